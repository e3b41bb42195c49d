"""The job history: every submission, its last known state, its outputs and local files, in SQLite.

Two server processes on one machine (two chat windows) share the file: WAL mode and a busy
timeout let them write in turn. Each process keeps one connection, used by one worker thread
at a time, so the event loop never blocks on the disk (a connection per operation paid a WAL
checkpoint at every close). Inlined data URIs are stored as a short digest, never whole.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from runcomfy_mcp.domain.spending import LedgerRow
from runcomfy_mcp.domain.views import OUTCOME_UNKNOWN, HistoryStatus, JobRecord, SharedPoll
from runcomfy_mcp.errors import StoreError
from runcomfy_mcp.store.base import LedgerCheck
from runcomfy_mcp.store.grants import SQLITE_TABLES
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
from runcomfy_mcp.store.sqlite_grants import SQLiteGrants

T = TypeVar("T")

# The last status poll of each job, shared by the processes waiting on it (see Store.share_poll).
_STATUS_POLLS = """CREATE TABLE IF NOT EXISTS status_polls (
    request_id     TEXT NOT NULL,
    owner          TEXT NOT NULL,
    status         TEXT,
    queue_position INTEGER,
    answered_at    REAL,
    claimed_at     REAL,
    PRIMARY KEY (request_id, owner)
)"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    request_id   TEXT PRIMARY KEY,
    owner        TEXT NOT NULL DEFAULT '',
    model_id     TEXT NOT NULL,
    tool         TEXT NOT NULL,
    arguments    TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    updated_at   REAL NOT NULL,
    status       TEXT NOT NULL,
    video_urls   TEXT NOT NULL DEFAULT '[]',
    local_files  TEXT NOT NULL DEFAULT '[]',
    output       TEXT,
    error        TEXT,
    cost         REAL,
    estimated_cost REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_owner_time ON jobs (owner, submitted_at DESC);
{_STATUS_POLLS};
CREATE TABLE IF NOT EXISTS used_marks (mark TEXT PRIMARY KEY, expires_at REAL NOT NULL);
"""

# Forward migrations: user_version N → N + 1. A file of any earlier version is brought up at open.
_MIGRATIONS: dict[int, list[str]] = {
    1: ["ALTER TABLE jobs ADD COLUMN estimated_cost REAL"],  # spending limits (version 1 had none)
    2: SQLITE_TABLES,  # OAuth apps, grants, codes and tokens
    3: [_STATUS_POLLS],  # waits on one job share its polls
    4: ["CREATE TABLE IF NOT EXISTS used_marks (mark TEXT PRIMARY KEY, expires_at REAL NOT NULL)"],  # consent, once
}
SCHEMA_VERSION = 5


def _ledger(connection: sqlite3.Connection, owner: str, since: float) -> list[LedgerRow]:
    return ledger_rows(connection.execute(ledger_statement("?"), (owner, since)).fetchall())


class SQLiteStore(SQLiteGrants):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._one_at_a_time = anyio.CapacityLimiter(1)  # one thread at a time on the one connection

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._make_private()
            connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            try:
                connection.row_factory = sqlite3.Row
                # With WAL this cannot corrupt the file; at worst a power cut loses the last status update.
                connection.execute("PRAGMA synchronous=NORMAL")
                self._prepare(connection)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _make_private(self) -> None:
        """The history (prompts, inputs, URLs) is its owner's alone: the file is created 0600 before SQLite opens it
        (its -wal and -shm files take the same mode), and one an earlier version left readable is tightened."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for path in (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm", "-journal"))):
            try:
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
            except FileNotFoundError:
                continue

    def _prepare(self, connection: sqlite3.Connection) -> None:
        # Two processes creating the file at once can each find it locked while the other switches it to
        # WAL; the busy timeout does not cover that switch, so retry it briefly.
        for attempt in range(50):
            try:
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                self._migrate(connection)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.02)

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            fresh = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone() is None
            if fresh:
                for statement in [*_SCHEMA.split(";"), *SQLITE_TABLES]:
                    if statement.strip():
                        connection.execute(statement)
            else:
                for step in range(max(version, 1), SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        connection.execute(statement)
            # never lower: a newer release may have migrated further, and its additions keep this one working
            connection.execute(f"PRAGMA user_version = {max(version, SCHEMA_VERSION)}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def in_thread() -> T:
            try:
                return work(self._connect())
            except sqlite3.DatabaseError:
                self.close()  # the next operation starts from a fresh connection (e.g. the file was replaced)
                raise

        try:
            return await anyio.to_thread.run_sync(in_thread, limiter=self._one_at_a_time)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"The job history ({self.path}) could not be used: {exc}.") from exc

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def aclose(self) -> None:
        self.close()

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
        await self._run(lambda c: c.execute(insert_statement("?"), values))

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
        """Record a submission before it is sent, as `outcome_unknown` under `local_id`, in one transaction with
        `check` of this owner's ledger since `since`: processes racing for the last of a budget take turns here."""

        def work(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")  # the write lock first: no one else can count and insert meanwhile
            try:
                if check is not None:
                    check(_ledger(c, owner, since))
                values = insert_values(local_id, model_id, tool, arguments, owner, OUTCOME_UNKNOWN, estimated_cost)
                c.execute(insert_statement("?"), values)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._run(work)

    async def confirm(self, local_id: str, request_id: str) -> None:
        """The submit was accepted: the reservation becomes the job, under RunComfy's id."""
        await self._run(
            lambda c: c.execute(
                "UPDATE jobs SET request_id = ?, status = 'in_queue', updated_at = ? WHERE request_id = ?",
                (request_id, time.time(), local_id),
            )
        )

    async def discard(self, local_id: str) -> None:
        """Nothing was sent after all: the reservation goes."""
        await self._run(lambda c: c.execute("DELETE FROM jobs WHERE request_id = ?", (local_id,)))

    async def ledger(self, owner: str, since: float) -> list[LedgerRow]:
        return await self._run(lambda c: _ledger(c, owner, since))

    async def use_once(self, mark: str, expires_at: float) -> bool:
        """True the first time `mark` is used (by any process on this file); marks past their time are forgotten."""

        def work(c: sqlite3.Connection) -> bool:
            c.execute("DELETE FROM used_marks WHERE expires_at < ?", (time.time(),))
            inserted = c.execute(
                "INSERT INTO used_marks (mark, expires_at) VALUES (?, ?) ON CONFLICT (mark) DO NOTHING",
                (mark, expires_at),
            )
            return inserted.rowcount == 1

        return await self._run(work)

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
        """Record what a status or result call learned; a job this store never saw is left unrecorded."""
        values = update_values(request_id, status, video_urls, output, error, cost)
        await self._run(lambda c: c.execute(update_statement("?"), values))

    async def set_local_files(self, request_id: str, paths: list[str]) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE jobs SET local_files = ?, updated_at = ? WHERE request_id = ?",
                (json.dumps(paths), time.time(), request_id),
            )
        )

    async def get(self, request_id: str, owner: str = "") -> JobRecord | None:
        row = await self._run(
            lambda c: c.execute("SELECT * FROM jobs WHERE request_id = ? AND owner = ?", (request_id, owner)).fetchone()
        )
        return record_from_row(row) if row else None

    async def list(self, *, owner: str = "", status: HistoryStatus | None = None, limit: int = 20) -> list[JobRecord]:
        query = "SELECT * FROM jobs WHERE owner = ?"
        params: list[Any] = [owner]
        if status:
            query += " AND status = ?"
            params.append(status)
        query += " ORDER BY submitted_at DESC LIMIT ?"
        params.append(limit)
        rows = await self._run(lambda c: c.execute(query, params).fetchall())
        return [record_from_row(r) for r in rows]

    async def share_poll(
        self, request_id: str, owner: str, *, seen: float | None, fresh_s: float, claim_s: float = CLAIM_STANDS_S
    ) -> SharedPoll:
        def work(c: sqlite3.Connection) -> SharedPoll:
            c.execute("BEGIN IMMEDIATE")  # the write lock first: another process cannot claim the same poll
            try:
                now = time.time()
                row = c.execute(
                    "SELECT status, queue_position, answered_at, claimed_at FROM status_polls"
                    " WHERE request_id = ? AND owner = ?",
                    (request_id, owner),
                ).fetchone()
                share = poll_share(row, now, seen, fresh_s, claim_s)
                if share.yours:
                    c.execute(
                        "INSERT INTO status_polls (request_id, owner, claimed_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (request_id, owner) DO UPDATE SET claimed_at = excluded.claimed_at",
                        (request_id, owner, now),
                    )
                c.execute("COMMIT")
                return share
            except BaseException:
                c.execute("ROLLBACK")
                raise

        return await self._run(work)

    async def record_poll(self, request_id: str, owner: str, *, status: str, queue_position: int | None) -> float:
        now = time.time()
        await self._run(
            lambda c: c.execute(
                "INSERT INTO status_polls (request_id, owner, status, queue_position, answered_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, owner) DO UPDATE SET status = excluded.status,"
                " queue_position = excluded.queue_position, answered_at = excluded.answered_at",
                (request_id, owner, status, queue_position, now),
            )
        )
        return now
