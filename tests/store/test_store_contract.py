"""One contract, both backends: every test here runs against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

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
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == 2


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    stores = [PostgresStore(database_url) for _ in range(4)]
    try:
        async with anyio.create_task_group() as group:
            for opened in stores:
                group.start_soon(opened.list)
        import psycopg

        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            version = await (await conn.execute("SELECT version FROM schema_version")).fetchall()
        assert version == [(2,)]
    finally:
        for opened in stores:
            await opened.aclose()
