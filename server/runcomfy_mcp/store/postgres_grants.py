"""OAuth grants in the PostgreSQL history (the `GrantStore` half of `PostgresStore`), shared by every replica."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from runcomfy_mcp.store.grants import SQLGrantStore, Step, statements


class PostgresGrants(SQLGrantStore):
    SQL = statements("%s")

    def _connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        raise NotImplementedError  # PostgresStore's: a pooled connection whose failures become StoreError

    async def _execute(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _rows(self, name: str, params: tuple[Any, ...] = ()) -> list[Mapping[str, Any]]:
        return list(await self._execute(self.SQL[name], params))

    async def _atomically(self, steps: Sequence[Step], *, guarded: bool) -> bool:
        async with self._connection() as conn, conn.transaction():
            # The row lock the first UPDATE or DELETE takes makes a racing one wait, then find the row gone: one winner.
            (first, params), *rest = steps
            changed_one = (await conn.execute(self.SQL[first], params)).rowcount == 1
            if changed_one or not guarded:
                for name, values in rest:
                    await conn.execute(self.SQL[name], values)
        return changed_one

    async def count_try(self, request_id: str) -> int:
        rows = await self._execute(self.SQL["count_try"] + " RETURNING tries", (request_id,))
        return int(rows[0]["tries"]) if rows else 0
