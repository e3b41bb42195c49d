"""OAuth grants in the SQLite history (the `GrantStore` half of `SQLiteStore`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from runcomfy_mcp.store.grants import SQLGrantStore, Step, statements

T = TypeVar("T")


@contextmanager
def _transaction(c: sqlite3.Connection) -> Iterator[None]:
    c.execute("BEGIN IMMEDIATE")  # the write lock first: the check and the writes cannot interleave
    try:
        yield
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


class SQLiteGrants(SQLGrantStore):
    SQL = statements("?")

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's: one connection, one worker thread at a time

    async def _rows(self, name: str, params: tuple[Any, ...] = ()) -> list[Mapping[str, Any]]:
        return list(await self._run(lambda c: c.execute(self.SQL[name], params).fetchall()))

    async def _atomically(self, steps: Sequence[Step], *, guarded: bool) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                (first, params), *rest = steps
                changed_one = c.execute(self.SQL[first], params).rowcount == 1
                if changed_one or not guarded:
                    for name, values in rest:
                        c.execute(self.SQL[name], values)
            return changed_one

        return await self._run(work)

    async def count_try(self, request_id: str) -> int:
        def work(c: sqlite3.Connection) -> int:
            with _transaction(c):
                c.execute(self.SQL["count_try"], (request_id,))
                row = c.execute(self.SQL["tries"], (request_id,)).fetchone()
            return int(row["tries"]) if row else 0

        return await self._run(work)
