"""One contract, both backends: every test here runs against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from runcomfy_mcp.domain.grants import Grant, IssuedCode, IssuedToken, PendingAuthorization, TokenKind
from runcomfy_mcp.domain.pricing import Estimate
from runcomfy_mcp.domain.spending import LedgerRow, Usage
from runcomfy_mcp.errors import SpendLimitError, StoreError
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.store.base import Store
from runcomfy_mcp.store.postgres import PostgresStore
from runcomfy_mcp.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> object:
    """Opens stores on one history: two calls give two independent handles (two processes, two replicas)."""
    url = request.getfixturevalue("database_url") if backend == "postgres" else None

    def make() -> Store:
        return PostgresStore(url) if url else SQLiteStore(tmp_path / "jobs.sqlite3")

    return make


@pytest.fixture
async def store(make_store: object) -> AsyncIterator[Store]:
    opened: Store = make_store()  # type: ignore[operator]
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_each_owner_sees_only_their_own_jobs(store: Store) -> None:
    await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={}, owner="alice")
    await store.record_submission(request_id="r2", model_id="a/b", tool="t", arguments={}, owner="bob")
    assert [j.request_id for j in await store.list(owner="alice")] == ["r1"]
    assert await store.get("r2", "alice") is None and (await store.get("r2", "bob")) is not None


async def test_updates_keep_what_they_do_not_change_and_outputs_skip_echoed_inputs(store: Store) -> None:
    image = "https://cdn.example/in.png"
    await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={"image_url": image})
    output = {"video": "https://cdn.example/out.mp4", "image": image}
    await store.update("r1", status="succeeded", video_urls=["https://cdn.example/out.mp4"], output=output, cost=0.2)
    await store.update("r1", status="completed")  # a later status poll says less than the result did
    await store.set_local_files("r1", ["/videos/r1.mp4"])
    record = await store.get("r1")
    assert record is not None and record.status == "succeeded" and record.cost == 0.2
    assert record.video_urls == ["https://cdn.example/out.mp4"] and record.local_files == ["/videos/r1.mp4"]
    assert [(o.kind, o.url) for o in record.outputs] == [("video", "https://cdn.example/out.mp4")]
    assert [j.request_id for j in await store.list(status="succeeded")] == ["r1"]
    assert await store.list(status="failed") == []


async def test_data_uris_are_kept_as_digests(store: Store) -> None:
    uri = "data:image/png;base64," + "A" * 5000
    await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={"images": [uri]})
    record = await store.get("r1")
    assert record is not None and record.arguments["images"][0].startswith("data:image/png;base64,<5022 chars")


async def test_a_reservation_becomes_the_job_or_goes(store: Store) -> None:
    kwargs = {"model_id": "a/b", "tool": "t", "arguments": {}, "owner": "o", "estimated_cost": 0.5, "since": 0.0}
    await store.reserve(local_id="unconfirmed-1", **kwargs)  # type: ignore[arg-type]
    await store.reserve(local_id="unconfirmed-2", **kwargs)  # type: ignore[arg-type]
    assert {j.status for j in await store.list(owner="o")} == {"outcome_unknown"}
    await store.confirm("unconfirmed-1", "req-1")
    await store.discard("unconfirmed-2")
    jobs = await store.list(owner="o")
    assert [(j.request_id, j.status, j.estimated_cost_usd) for j in jobs] == [("req-1", "in_queue", 0.5)]
    assert [r.charged for r in await store.ledger("o", 0.0)] == [0.5]


async def test_a_refused_check_records_nothing(store: Store) -> None:
    def refuse(rows: list[LedgerRow]) -> None:
        raise SpendLimitError("over the budget")

    with pytest.raises(SpendLimitError):
        await store.reserve(
            local_id="unconfirmed-1", model_id="a/b", tool="t", arguments={}, owner="o", estimated_cost=1.0,
            since=0.0, check=refuse,
        )  # fmt: skip
    assert await store.list(owner="o") == []


async def test_racing_reservations_from_two_handles_never_pass_a_budget(make_store: object) -> None:
    """Two handles on one history (two processes, or two replicas): 20 racing reservations, room for 5."""
    stores: list[Store] = [make_store(), make_store()]  # type: ignore[operator]
    limits = Settings(budget_usd=0.5).spend_limits()
    estimate = Estimate(0.1, "test")
    accepted: list[str] = []

    async def reserve(i: int) -> None:
        def check(rows: list[LedgerRow]) -> None:
            import time

            limits.check_usage(Usage.of(rows, time.time(), limits.window_h), estimate)

        try:
            await stores[i % 2].reserve(
                local_id=f"unconfirmed-{i}", model_id="a/b", tool="t", arguments={}, owner="team",
                estimated_cost=0.1, since=0.0, check=check,
            )  # fmt: skip
            accepted.append(f"unconfirmed-{i}")
        except SpendLimitError:
            pass

    try:
        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(reserve, i)
        assert len(accepted) == 5
        assert round(sum(r.charged for r in await stores[0].ledger("team", 0.0)), 6) == 0.5
    finally:
        for opened in stores:
            await opened.aclose()


async def test_waits_on_two_handles_share_one_poll_and_its_answer(make_store: object) -> None:
    """Replica A claims the poll; B, asking meanwhile, is told to wait for it, then gets A's answer."""
    a: Store = make_store()  # type: ignore[operator]
    b: Store = make_store()  # type: ignore[operator]
    try:
        assert (await a.share_poll("r1", "team", seen=None, fresh_s=30)).yours
        waiting = await b.share_poll("r1", "team", seen=None, fresh_s=30)
        assert not waiting.yours and waiting.status is None  # A's poll is on its way
        answered = await a.record_poll("r1", "team", status="in_queue", queue_position=3)
        shared = await b.share_poll("r1", "team", seen=None, fresh_s=30)
        assert (shared.status, shared.queue_position, shared.answered_at, shared.yours) == (
            "in_queue",
            3,
            answered,
            False,
        )
        # Nothing newer than what each has seen: the next poll is claimed by one of them only.
        assert (await b.share_poll("r1", "team", seen=answered, fresh_s=30)).yours
        assert not (await a.share_poll("r1", "team", seen=answered, fresh_s=30)).yours
        later = await b.record_poll("r1", "team", status="completed", queue_position=None)
        assert later >= answered
        news = await a.share_poll("r1", "team", seen=answered, fresh_s=30)
        assert (news.status, news.queue_position) == ("completed", None)
        # Another owner's waits share nothing with this one's.
        assert (await a.share_poll("r1", "someone-else", seen=None, fresh_s=30)).yours
    finally:
        await a.aclose()
        await b.aclose()


async def test_racing_waits_get_one_claim_and_a_stale_one_is_taken_over(make_store: object) -> None:
    stores: list[Store] = [make_store(), make_store()]  # type: ignore[operator]
    claims = 0

    async def look(i: int) -> None:
        nonlocal claims
        share = await stores[i % 2].share_poll("r1", "team", seen=None, fresh_s=30)
        claims += share.yours

    try:
        async with anyio.create_task_group() as group:
            for i in range(12):
                group.start_soon(look, i)
        assert claims == 1
        # A claim never answered (its replica went away) stands only for `claim_s`, then another wait asks.
        assert (await stores[0].share_poll("r2", "team", seen=None, fresh_s=30, claim_s=0.2)).yours
        assert not (await stores[1].share_poll("r2", "team", seen=None, fresh_s=30, claim_s=0.2)).yours
        await anyio.sleep(0.3)
        assert (await stores[1].share_poll("r2", "team", seen=None, fresh_s=30, claim_s=0.2)).yours
        # An answer older than `fresh_s` is no news to a wait that has seen nothing yet.
        await stores[0].record_poll("r3", "team", status="in_progress", queue_position=None)
        await anyio.sleep(0.3)
        assert (await stores[1].share_poll("r3", "team", seen=None, fresh_s=0.2)).yours
    finally:
        for opened in stores:
            await opened.aclose()


async def test_a_broken_database_is_a_store_error(backend: str, tmp_path: Path) -> None:
    broken: Store
    if backend == "postgres":
        broken = PostgresStore("postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=1")
    else:
        (tmp_path / "jobs.sqlite3").write_bytes(b"this is not a database file" * 100)
        broken = SQLiteStore(tmp_path / "jobs.sqlite3")
    with pytest.raises(StoreError) as error:
        await broken.list()
    assert error.value.__cause__ is not None
    await broken.aclose()


async def test_an_old_sqlite_history_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as old:  # the schema before spending limits (user_version 0)
        old.execute(
            "CREATE TABLE jobs (request_id TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '', model_id TEXT NOT NULL,"
            " tool TEXT NOT NULL, arguments TEXT NOT NULL, submitted_at REAL NOT NULL, updated_at REAL NOT NULL,"
            " status TEXT NOT NULL, video_urls TEXT NOT NULL DEFAULT '[]', local_files TEXT NOT NULL DEFAULT '[]',"
            " output TEXT, error TEXT, cost REAL)"
        )
        old.execute(
            "INSERT INTO jobs VALUES ('r0', '', 'a/b', 't', '{}', 1, 1, 'succeeded', '[]', '[]', NULL, NULL, 0.3)"
        )
    store = SQLiteStore(path)
    try:
        record = await store.get("r0")
        assert record is not None and record.cost == 0.3 and record.estimated_cost_usd is None
        await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={}, estimated_cost=0.1)
        assert (await store.get("r1")).estimated_cost_usd == 0.1  # type: ignore[union-attr]
    finally:
        await store.aclose()
    with sqlite3.connect(path) as reopened:
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == 5
        assert reopened.execute("SELECT count(*) FROM status_polls").fetchone()[0] == 0  # the table came too
        assert reopened.execute("SELECT count(*) FROM used_marks").fetchone()[0] == 0


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    stores = [PostgresStore(database_url) for _ in range(4)]
    try:
        async with anyio.create_task_group() as group:
            for opened in stores:
                group.start_soon(opened.list)
        import psycopg

        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            version = await (await conn.execute("SELECT version FROM schema_version")).fetchall()
        assert version == [(5,)]
    finally:
        for opened in stores:
            await opened.aclose()


# ------------------------------------------------------------------ OAuth grants


def _pending(request_id: str = "req-1", expires_at: float = 2_000.0) -> PendingAuthorization:
    return PendingAuthorization(
        request_id=request_id,
        client_id="app-1",
        redirect_uri="http://127.0.0.1:9/cb",
        redirect_uri_explicit=True,
        code_challenge="challenge",
        state="s",
        scopes=("a", "b"),
        resource="https://mcp.example/mcp",
        csrf="csrf-1",
        expires_at=expires_at,
    )


def _grant(grant_id: str = "g1", owner: str = "key:abc") -> Grant:
    return Grant(grant_id, "app-1", "App", "sealed", owner, created_at=1_000.0)


def _code(grant_id: str = "g1", code_hash: str = "c" * 64, expires_at: float = 2_000.0) -> IssuedCode:
    return IssuedCode(code_hash, grant_id, "app-1", "http://127.0.0.1:9/cb", True, "challenge", ("a",), "r", expires_at)


def _token(
    token_hash: str, kind: TokenKind = "access", grant_id: str = "g1", expires_at: float = 5_000.0
) -> IssuedToken:
    return IssuedToken(token_hash, kind, grant_id, "app-1", ("a",), "https://mcp.example/mcp", expires_at)


async def test_a_grant_opens_once_from_its_pending_request(store: Store) -> None:
    await store.save_pending(_pending())
    assert await store.pending("req-1", now=1_000.0) == _pending()
    assert await store.pending("req-1", now=2_001.0) is None  # expired
    assert await store.count_try("req-1") == 1 and await store.count_try("req-1") == 2
    assert (await store.pending("req-1", now=1_000.0)).tries == 2  # type: ignore[union-attr]
    assert await store.open_grant("req-1", _grant(), _code(), now=1_000.0) is True
    assert await store.open_grant("req-1", _grant("g2"), _code("g2", "d" * 64), now=1_000.0) is False  # sent twice
    assert await store.pending("req-1", now=1_000.0) is None and await store.count_try("req-1") == 0
    assert await store.code("c" * 64) == _code() and await store.code("d" * 64) is None
    assert [g.grant_id for g in await store.grants()] == ["g1"]


async def test_an_expired_pending_request_opens_nothing(store: Store) -> None:
    await store.save_pending(_pending(expires_at=1_500.0))
    assert await store.open_grant("req-1", _grant(), _code(), now=1_600.0) is False
    assert await store.grants() == []


async def test_a_code_is_redeemed_once_by_racing_handles(make_store: object) -> None:
    stores: list[Store] = [make_store(), make_store()]  # type: ignore[operator]
    try:
        await stores[0].save_pending(_pending())
        await stores[0].open_grant("req-1", _grant(), _code(), now=1_000.0)
        won: list[int] = []

        async def redeem(i: int) -> None:
            tokens = [_token(f"{i:064d}"), _token(f"{i + 100:064d}", "refresh")]
            if await stores[i % 2].redeem_code("c" * 64, tokens, now=1_100.0):
                won.append(i)

        async with anyio.create_task_group() as group:
            for i in range(10):
                group.start_soon(redeem, i)
        assert len(won) == 1
        found = await stores[1].token(f"{won[0]:064d}")
        assert found is not None and found[0] == _token(f"{won[0]:064d}") and found[1].grant_id == "g1"
        assert (await stores[0].code("c" * 64)).used_at == 1_100.0  # type: ignore[union-attr]
        assert await stores[0].token(f"{(won[0] + 1) % 10:064d}") is None  # the losers' tokens were never stored
    finally:
        for opened in stores:
            await opened.aclose()


async def test_an_expired_code_or_an_ended_grant_redeems_nothing(store: Store) -> None:
    await store.save_pending(_pending())
    await store.open_grant("req-1", _grant(), _code(expires_at=1_200.0), now=1_000.0)
    assert await store.redeem_code("c" * 64, [_token("t" * 64)], now=1_300.0) is False
    await store.save_pending(_pending("req-2"))
    await store.open_grant("req-2", _grant("g2"), _code("g2", "d" * 64), now=1_000.0)
    assert await store.revoke_grant("g2", now=1_100.0) is True
    assert await store.redeem_code("d" * 64, [_token("u" * 64, grant_id="g2")], now=1_100.0) is False
    assert await store.token("t" * 64) is None and await store.token("u" * 64) is None


async def test_a_refresh_token_rotates_once_by_racing_handles(make_store: object) -> None:
    stores: list[Store] = [make_store(), make_store()]  # type: ignore[operator]
    try:
        await stores[0].save_pending(_pending())
        await stores[0].open_grant("req-1", _grant(), _code(), now=1_000.0)
        await stores[0].redeem_code("c" * 64, [_token("a" * 64), _token("r" * 64, "refresh")], now=1_000.0)
        won: list[int] = []

        async def rotate(i: int) -> None:
            if await stores[i % 2].rotate_refresh("r" * 64, [_token(f"{i:064d}", "refresh")], now=1_100.0):
                won.append(i)

        async with anyio.create_task_group() as group:
            for i in range(10):
                group.start_soon(rotate, i)
        assert len(won) == 1
        spent = await stores[1].token("r" * 64)
        assert spent is not None and spent[0].spent_at == 1_100.0  # kept, so presenting it again is noticed
        assert await stores[0].rotate_refresh("a" * 64, [], now=1_100.0) is False  # an access token never rotates
        assert await stores[0].rotate_refresh(f"{won[0]:064d}", [], now=6_000.0) is False  # expired
    finally:
        for opened in stores:
            await opened.aclose()


async def test_revoking_a_grant_ends_it_for_every_handle(make_store: object) -> None:
    stores: list[Store] = [make_store(), make_store()]  # type: ignore[operator]
    try:
        for name, owner in (("g1", "key:alice"), ("g2", "key:bob")):
            await stores[0].save_pending(_pending(f"req-{name}"))
            await stores[0].open_grant(f"req-{name}", _grant(name, owner), _code(name, name * 32), now=1_000.0)
            await stores[0].redeem_code(name * 32, [_token(name * 32 + "t" * 60, grant_id=name)], now=1_000.0)
        assert [g.grant_id for g in await stores[1].grants(token_owner="key:alice")] == ["g1"]
        assert await stores[1].revoke_grant("g1", now=1_500.0) is True
        assert await stores[0].token("g1" * 32 + "t" * 60) is None  # the other handle's very next read
        assert await stores[0].token("g2" * 32 + "t" * 60) is not None
        assert await stores[0].code("g1" * 32) is None
        assert await stores[0].revoke_grant("g1", now=1_600.0) is False
        assert [g.grant_id for g in await stores[0].grants()] == ["g2"]
        assert await stores[0].grants(token_owner="key:alice") == []
    finally:
        for opened in stores:
            await opened.aclose()


async def test_apps_are_kept_and_what_expired_is_pruned(store: Store) -> None:
    await store.save_client("used", '{"client_id": "used"}', created_at=0.0)
    await store.save_client("idle", '{"client_id": "idle"}', created_at=0.0)
    await store.save_client("new", '{"client_id": "new"}', created_at=9_000.0)
    await store.save_client("new", '{"client_id": "new", "client_name": "N"}', created_at=9_500.0)
    assert await store.client("new") == '{"client_id": "new", "client_name": "N"}'
    await store.save_pending(_pending(expires_at=9_999.0))
    await store.open_grant("req-1", Grant("g1", "used", "U", "s", "o", 1.0), _code(expires_at=5_000.0), now=1.0)
    await store.redeem_code("c" * 64, [_token("x" * 64, expires_at=5_000.0)], now=1.0)
    await store.save_pending(_pending("req-old", expires_at=5_000.0))
    await store.prune_grants(now=10_000.0, unused_client_s=3_600.0)
    assert await store.client("idle") is None and await store.client("used") and await store.client("new")
    assert await store.pending("req-old", now=0.0) is None
    assert await store.code("c" * 64) is None and await store.token("x" * 64) is None
    assert [g.grant_id for g in await store.grants()] == ["g1"]  # a grant outlives its tokens


# ---------------------------------------------------------------- amounts that are not money


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), -5.0])
async def test_the_store_refuses_an_amount_that_is_not_money(store: Store, bad: float) -> None:
    with pytest.raises(StoreError) as refused:
        await store.reserve(
            local_id="unconfirmed-1", model_id="a/b", tool="t", arguments={}, owner="o", estimated_cost=bad,
            since=0.0,
        )  # fmt: skip
    assert "estimated_cost" in refused.value.message
    with pytest.raises(StoreError):
        await store.record_submission(request_id="r0", model_id="a/b", tool="t", arguments={}, estimated_cost=bad)
    await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={}, owner="o")
    with pytest.raises(StoreError):
        await store.update("r1", status="succeeded", cost=bad)
    assert await store.list(owner="o") != [] and (await store.get("r1", "o")).cost is None  # type: ignore[union-attr]
    assert [r.request_id for r in await store.list(owner="o")] == ["r1"]


async def test_a_nan_already_in_the_history_never_makes_the_total_nan(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A history written by an earlier release may hold NaN (PostgreSQL keeps it): the ledger reads it as unknown."""
    await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={}, owner="o", estimated_cost=1)
    await store.record_submission(request_id="r2", model_id="a/b", tool="t", arguments={}, owner="o", estimated_cost=1)
    if backend == "postgres":
        import psycopg

        url = request.getfixturevalue("database_url")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("UPDATE jobs SET estimated_cost = 'NaN' WHERE request_id = 'r1'")
            await conn.execute("UPDATE jobs SET cost = '-Infinity' WHERE request_id = 'r2'")
    else:
        with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
            conn.execute("UPDATE jobs SET estimated_cost = -1e999 WHERE request_id = 'r1'")
            conn.execute("UPDATE jobs SET cost = -5 WHERE request_id = 'r2'")
    import time

    usage = Usage.of(await store.ledger("o", 0.0), time.time(), 24.0)
    assert usage.spent() == 1.0  # r1 unknown (0), r2 back to its estimate
    limits = Settings(budget_usd=3.0).spend_limits()
    with pytest.raises(SpendLimitError):
        limits.check_usage(usage, Estimate(10.0, "a $10 job"))


# ---------------------------------------------------------------- marks used once (consent)


async def test_a_mark_is_used_once_across_handles(make_store: object) -> None:
    """Two handles (two replicas) race to use one mark: exactly one wins; an expired mark is forgotten."""
    import time

    stores: list[Store] = [make_store(), make_store()]  # type: ignore[operator]
    wins: list[bool] = []

    async def use(i: int) -> None:
        wins.append(await stores[i % 2].use_once("consent:abc", time.time() + 600))

    try:
        async with anyio.create_task_group() as group:
            for i in range(10):
                group.start_soon(use, i)
        assert sorted(wins) == [False] * 9 + [True]
        assert await stores[0].use_once("consent:other", time.time() + 600)
        assert await stores[1].use_once("consent:old", time.time() - 1)  # already past its time...
        assert await stores[0].use_once("consent:new", time.time() + 600)  # ...and swept by the next use
        assert await stores[1].use_once("consent:old", time.time() + 600)
    finally:
        for opened in stores:
            await opened.aclose()
