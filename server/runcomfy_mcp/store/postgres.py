"""The job history in PostgreSQL, shared by every replica of a team's server (psycopg 3, async, pooled).

The schema is versioned in `schema_version` and migrated forward at start, under an advisory lock so
replicas starting together take turns. `reserve` takes a transaction-scoped advisory lock on the
owner's name before it reads their ledger and inserts: two replicas submitting for one caller take
turns there, so a budget holds however the requests are spread; different callers do not wait on
each other.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from runcomfy_mcp.domain.spending import LedgerRow
from runcomfy_mcp.domain.views import OUTCOME_UNKNOWN, HistoryStatus, JobRecord, SharedPoll
from runcomfy_mcp.errors import StoreError
from runcomfy_mcp.store.base import LedgerCheck
from runcomfy_mcp.store.dsn import dsn_password, dsn_secrets, scrub
from runcomfy_mcp.store.grants import POSTGRES_TABLES
from runcomfy_mcp.store.postgres_grants import PostgresGrants
from runcomfy_mcp.store.records import (
    CLAIM_STANDS_S,
    insert_statement,
    insert_values,
    ledger_rows,
    ledger_statement,
    poll_share,
    record_from_row,
    update_statement,
    update_values,
)

Pool = AsyncConnectionPool[Any]
_QUOTED = re.compile(r'"[^"]*"')  # what libpq quotes back: a piece of the URL, a host, a user
_SERVER_PREFIX = re.compile(r'^(?:connection failed: )?(?:connection to server at "…", port \d+ failed: )?')
MIGRATION_LOCK = 7_311_004_912  # any fixed number: the advisory lock replicas take to migrate one at a time
SCHEMA_VERSION = 5
_MIGRATIONS: dict[int, list[str]] = {
    # version 1: the history as the SQLite backend has it since spending limits (its version 2)
    1: [
        """CREATE TABLE jobs (
            request_id     TEXT PRIMARY KEY,
            owner          TEXT NOT NULL DEFAULT '',
            model_id       TEXT NOT NULL,
            tool           TEXT NOT NULL,
            arguments      TEXT NOT NULL,
            submitted_at   DOUBLE PRECISION NOT NULL,
            updated_at     DOUBLE PRECISION NOT NULL,
            status         TEXT NOT NULL,
            video_urls     TEXT NOT NULL DEFAULT '[]',
            local_files    TEXT NOT NULL DEFAULT '[]',
            output         TEXT,
            error          TEXT,
            cost           DOUBLE PRECISION,
            estimated_cost DOUBLE PRECISION
        )""",
        "CREATE INDEX jobs_by_owner_time ON jobs (owner, submitted_at DESC)",
    ],
    # version 2: unfinished jobs found fast, for the active-jobs limit across replicas
    2: ["CREATE INDEX jobs_unfinished ON jobs (owner) WHERE status IN ('in_queue', 'in_progress', 'outcome_unknown')"],
    # version 3: OAuth apps, grants, codes and tokens, so every replica honours (and revokes) the same grants
    3: POSTGRES_TABLES,
    # version 4: the last status poll of each job, shared by the replicas waiting on it (Store.share_poll)
    4: [
        """CREATE TABLE status_polls (
            request_id     TEXT NOT NULL,
            owner          TEXT NOT NULL,
            status         TEXT,
            queue_position INTEGER,
            answered_at    DOUBLE PRECISION,
            claimed_at     DOUBLE PRECISION,
            PRIMARY KEY (request_id, owner)
        )"""
    ],
    # version 5: marks used once (a person's yes to one job), shared by every replica
    5: ["CREATE TABLE used_marks (mark TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)"],
}
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"  # one clock for every replica: the database's


CONNECT_TIMEOUT_S = 5  # a host that drops packets is reported after this, not after the TCP timeout
FORM = (
    "postgresql://user:password@host:port/dbname, with any space, '/', '@', '?' or '#' in the password percent-encoded"
)


class PostgresStore(PostgresGrants):
    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        self._url = url
        self._secrets = dsn_secrets(url)
        self._max = max_connections
        self._pool: Pool | None = None
        self._opening = anyio.Lock()
        self._where = "the server RUNCOMFY_DATABASE_URL names"

    def _scrubbed(self, text: str) -> str:
        """The driver's words without the password, and without what it quotes of the URL (that may be part of the
        password when the URL does not parse); one line."""
        text = _QUOTED.sub(lambda quoted: quoted[0] if len(quoted[0]) <= 3 else '"…"', scrub(text, self._secrets))
        return " ".join(text.split())

    def _connect_options(self) -> dict[str, Any]:
        """The URL read as libpq reads it, before any connection is tried: a URL it cannot read is said at once, by
        us (the driver's own message would quote it, password and all)."""
        try:
            facts = conninfo_to_dict(self._url)
        except psycopg.ProgrammingError as exc:
            raise StoreError(
                f"RUNCOMFY_DATABASE_URL cannot be read ({self._scrubbed(str(exc))}). Write it as {FORM}."
            ) from None  # the driver's message quotes the URL: it must not travel along as the cause
        if dsn_password(self._url) and not facts.get("password"):
            raise StoreError(
                f"RUNCOMFY_DATABASE_URL cannot be read: its password runs into the host. Write it as {FORM}."
            )
        host = facts.get("host") or facts.get("hostaddr") or "localhost"
        database = f", database {facts['dbname']}" if "dbname" in facts else ""
        self._where = scrub(f"{host}:{facts.get('port') or 5432}{database}", self._secrets)
        return {} if "connect_timeout" in facts else {"connect_timeout": CONNECT_TIMEOUT_S}

    async def _check_reachable(self, options: dict[str, Any]) -> None:
        """One plain connection first: the pool would retry in the background and end in a bare PoolTimeout, where
        this says at once what is wrong (refused, unknown host, login refused)."""
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, **options)
        except (psycopg.Error, OSError) as exc:
            reason = _SERVER_PREFIX.sub("", self._scrubbed(str(exc).strip().split("\n")[0])).rstrip(".")
            raise StoreError(
                f"The job history's PostgreSQL server ({self._where}) could not be used: {reason}. Check that it runs "
                "and that RUNCOMFY_DATABASE_URL names it, its database and a user it accepts."
            ) from exc  # libpq names hosts and users here, never the password
        await conn.close()

    async def _connected(self) -> Pool:
        async with self._opening:
            if self._pool is None:
                options = self._connect_options()
                await self._check_reachable(options)
                pool = AsyncConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._max,
                    kwargs={"row_factory": dict_row, "autocommit": True, **options},
                    open=False,
                )
                await pool.open(wait=True, timeout=15)
                try:
                    await self._migrate(pool)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        assert self._pool is not None
        return self._pool

    @staticmethod
    async def _migrate(pool: Pool) -> None:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
            version = row["version"] if row else 0
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    await conn.execute(statement)
            if row is None:
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
            else:
                await conn.execute("UPDATE schema_version SET version = %s", (max(version, SCHEMA_VERSION),))

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; the driver's failures become StoreError here, and only here."""
        try:
            pool = await self._connected()
            async with pool.connection() as conn:
                yield conn
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise StoreError(
                f"The job history (PostgreSQL, {self._where}) could not be used: {type(exc).__name__}: "
                f"{self._scrubbed(str(exc))}."
            ) from exc

    async def _execute(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall() if cursor.description else []

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # ------------------------------------------------------------ writes

    async def record_submission(
        self,
        *,
        request_id: str,
        model_id: str,
        tool: str,
        arguments: Mapping[str, Any],
        owner: str = "",
        status: str = "in_queue",
        estimated_cost: float | None = None,
    ) -> None:
        values = insert_values(request_id, model_id, tool, arguments, owner, status, estimated_cost)
        await self._execute(insert_statement("%s"), values)

    async def reserve(
        self,
        *,
        local_id: str,
        model_id: str,
        tool: str,
        arguments: Mapping[str, Any],
        owner: str,
        estimated_cost: float | None,
        since: float,
        check: LedgerCheck | None = None,
    ) -> None:
        async with self._connection() as conn, conn.transaction():
            # One writer per owner at a time, on every replica: the check and the insert cannot interleave.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (owner,))
            if check is not None:
                check(await _ledger(conn, owner, since))
            values = insert_values(local_id, model_id, tool, arguments, owner, OUTCOME_UNKNOWN, estimated_cost)
            await conn.execute(insert_statement("%s"), values)

    async def confirm(self, local_id: str, request_id: str) -> None:
        await self._execute(
            "UPDATE jobs SET request_id = %s, status = 'in_queue', updated_at = %s WHERE request_id = %s",
            (request_id, time.time(), local_id),
        )

    async def discard(self, local_id: str) -> None:
        await self._execute("DELETE FROM jobs WHERE request_id = %s", (local_id,))

    async def update(
        self,
        request_id: str,
        *,
        status: str,
        video_urls: list[str] | None = None,
        output: Mapping[str, Any] | None = None,
        error: str | None = None,
        cost: float | None = None,
    ) -> None:
        await self._execute(update_statement("%s"), update_values(request_id, status, video_urls, output, error, cost))

    async def set_local_files(self, request_id: str, paths: list[str]) -> None:
        await self._execute(
            "UPDATE jobs SET local_files = %s, updated_at = %s WHERE request_id = %s",
            (json.dumps(paths), time.time(), request_id),
        )

    async def share_poll(
        self, request_id: str, owner: str, *, seen: float | None, fresh_s: float, claim_s: float = CLAIM_STANDS_S
    ) -> SharedPoll:
        async with self._connection() as conn, conn.transaction():
            # The row first, then its lock: two replicas asking at once take turns, and only one gets the claim.
            await conn.execute(
                "INSERT INTO status_polls (request_id, owner) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (request_id, owner),
            )
            cursor = await conn.execute(
                f"SELECT status, queue_position, answered_at, claimed_at, {_NOW} AS now FROM status_polls"
                " WHERE request_id = %s AND owner = %s FOR UPDATE",
                (request_id, owner),
            )
            row = await cursor.fetchone()
            assert row is not None  # inserted above, and rows are never deleted
            share = poll_share(row, row["now"], seen, fresh_s, claim_s)
            if share.yours:
                await conn.execute(
                    "UPDATE status_polls SET claimed_at = %s WHERE request_id = %s AND owner = %s",
                    (row["now"], request_id, owner),
                )
            return share

    async def record_poll(self, request_id: str, owner: str, *, status: str, queue_position: int | None) -> float:
        rows = await self._execute(
            f"INSERT INTO status_polls (request_id, owner, status, queue_position, answered_at)"
            f" VALUES (%s, %s, %s, %s, {_NOW}) ON CONFLICT (request_id, owner) DO UPDATE SET status = excluded.status,"
            " queue_position = excluded.queue_position, answered_at = excluded.answered_at RETURNING answered_at",
            (request_id, owner, status, queue_position),
        )
        return float(rows[0]["answered_at"])

    # ------------------------------------------------------------ reads

    async def ledger(self, owner: str, since: float) -> list[LedgerRow]:
        async with self._connection() as conn:
            return await _ledger(conn, owner, since)

    async def use_once(self, mark: str, expires_at: float) -> bool:
        """True the first time `mark` is used on any replica; marks past their time are forgotten."""
        async with self._connection() as conn:
            await conn.execute("DELETE FROM used_marks WHERE expires_at < %s", (time.time(),))
            cursor = await conn.execute(
                "INSERT INTO used_marks (mark, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (mark) DO NOTHING RETURNING mark",
                (mark, expires_at),
            )
            return await cursor.fetchone() is not None

    async def get(self, request_id: str, owner: str = "") -> JobRecord | None:
        rows = await self._execute("SELECT * FROM jobs WHERE request_id = %s AND owner = %s", (request_id, owner))
        return record_from_row(rows[0]) if rows else None

    async def list(self, *, owner: str = "", status: HistoryStatus | None = None, limit: int = 20) -> list[JobRecord]:
        query = "SELECT * FROM jobs WHERE owner = %s"
        params: list[Any] = [owner]
        if status:
            query += " AND status = %s"
            params.append(status)
        query += " ORDER BY submitted_at DESC LIMIT %s"
        params.append(limit)
        return [record_from_row(r) for r in await self._execute(query, tuple(params))]


async def _ledger(conn: psycopg.AsyncConnection[Any], owner: str, since: float) -> list[LedgerRow]:
    return ledger_rows(await (await conn.execute(ledger_statement("%s"), (owner, since))).fetchall())
