"""The simulator's jobs and balance in a small SQLite file of the sandbox's data folder.

Clients start a new server process per session (the Inspector's CLI per call, Claude Desktop at each
launch), and the simulator lives in that process: kept here, a job submitted in one process is
followed, cancelled and downloaded from the next, and processes running at once see the same jobs.
Times are wall-clock seconds, so they mean the same in every process.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   TEXT NOT NULL UNIQUE,
    model_id     TEXT NOT NULL,
    arguments    TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    created_at   REAL NOT NULL,
    queue_s      REAL NOT NULL,
    run_s        REAL NOT NULL,
    cost         REAL NOT NULL,
    cancelled    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), balance_usd REAL NOT NULL);
"""


@dataclass(frozen=True)
class StoredJob:
    sequence: int
    request_id: str
    model_id: str
    arguments: dict[str, Any]
    submitted_at: float
    created_at: float
    queue_s: float
    run_s: float
    cost: float
    cancelled: bool


class SimulatorState:
    """Blocking SQLite calls: the simulator runs them in a worker thread."""

    def __init__(self, path: Path, *, opening_balance_usd: float) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers in one process never wait for another's writer
            db.executescript(SCHEMA)
        with self._connection() as db:
            db.execute("INSERT OR IGNORE INTO account (id, balance_usd) VALUES (1, ?)", (opening_balance_usd,))

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: a sandbox is a person's pace, and several processes share the file.
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def add(
        self,
        *,
        model_id: str,
        arguments: dict[str, Any],
        submitted_at: float,
        created_at: float,
        queue_s: float,
        run_s: float,
        cost: float,
    ) -> StoredJob:
        """A new job, its sequence and request id given here (so processes never hand out the same one)."""
        placeholder = f"new-{secrets.token_hex(8)}"
        with self._connection() as db:
            sequence = db.execute(
                "INSERT INTO jobs (request_id, model_id, arguments, submitted_at, created_at, queue_s, run_s, cost)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (placeholder, model_id, json.dumps(arguments), submitted_at, created_at, queue_s, run_s, cost),
            ).lastrowid
            assert sequence is not None
            request_id = f"sim-{sequence:06d}-{secrets.token_hex(4)}"
            db.execute("UPDATE jobs SET request_id = ? WHERE sequence = ?", (request_id, sequence))
        return StoredJob(
            sequence, request_id, model_id, arguments, submitted_at, created_at, queue_s, run_s, cost, False
        )

    def get(self, request_id: str) -> StoredJob | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT sequence, request_id, model_id, arguments, submitted_at, created_at, queue_s, run_s, cost,"
                " cancelled FROM jobs WHERE request_id = ?",
                (request_id,),
            ).fetchone()
        if row is None:
            return None
        sequence, request_id, model_id, arguments, submitted_at, created_at, queue_s, run_s, cost, cancelled = row
        return StoredJob(
            sequence,
            request_id,
            model_id,
            json.loads(arguments),
            submitted_at,
            created_at,
            queue_s,
            run_s,
            cost,
            bool(cancelled),
        )

    def cancel(self, request_id: str) -> bool:
        """True when this call cancelled it (so only one of processes racing to cancel refunds it)."""
        with self._connection() as db:
            done = db.execute("UPDATE jobs SET cancelled = 1 WHERE request_id = ? AND cancelled = 0", (request_id,))
            return done.rowcount == 1

    def queued_up_to(self, sequence: int, now: float) -> int:
        """Jobs still waiting in the queue that were submitted no later than this one, by any process."""
        with self._connection() as db:
            row = db.execute(
                "SELECT count(*) FROM jobs WHERE sequence <= ? AND cancelled = 0 AND ? - submitted_at < queue_s",
                (sequence, now),
            ).fetchone()
        return int(row[0])

    def balance(self) -> float:
        with self._connection() as db:
            return float(db.execute("SELECT balance_usd FROM account WHERE id = 1").fetchone()[0])

    def take(self, usd: float) -> float | None:
        """Takes `usd` from the balance in one transaction (a negative amount gives it back): the balance after, or
        None, taking nothing, when it holds less than `usd`."""
        with self._connection() as db:
            balance = float(db.execute("SELECT balance_usd FROM account WHERE id = 1").fetchone()[0])
            if usd > balance + 1e-9:
                return None
            db.execute("UPDATE account SET balance_usd = ? WHERE id = 1", (round(balance - usd, 6),))
            return round(balance - usd, 6)
