"""OAuth grants in the PostgreSQL history (the `GrantStore` half of `PostgresStore`), shared by every replica."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from runcomfy_mcp.domain.grants import Grant, IssuedCode, IssuedToken, PendingAuthorization
from runcomfy_mcp.store.grants import (
    code_from_row,
    code_values,
    grant_from_row,
    grant_values,
    pending_from_row,
    pending_values,
    statements,
    token_from_row,
    token_values,
)

SQL = statements("%s")


class PostgresGrants:
    def _connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        raise NotImplementedError  # PostgresStore's: a pooled connection whose failures become StoreError

    async def _execute(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def save_client(self, client_id: str, document: str, created_at: float) -> None:
        await self._execute(SQL["save_client"], (client_id, document, created_at))

    async def client(self, client_id: str) -> str | None:
        rows = await self._execute(SQL["client"], (client_id,))
        return str(rows[0]["document"]) if rows else None

    async def save_pending(self, pending: PendingAuthorization) -> None:
        await self._execute(SQL["save_pending"], pending_values(pending))

    async def pending(self, request_id: str, now: float) -> PendingAuthorization | None:
        rows = await self._execute(SQL["pending"], (request_id, now))
        return pending_from_row(rows[0]) if rows else None

    async def count_try(self, request_id: str) -> int:
        rows = await self._execute(SQL["count_try"] + " RETURNING tries", (request_id,))
        return int(rows[0]["tries"]) if rows else 0

    async def discard_pending(self, request_id: str) -> None:
        await self._execute(SQL["discard_pending"], (request_id,))

    async def open_grant(self, request_id: str, grant: Grant, code: IssuedCode, now: float) -> bool:
        async with self._connection() as conn, conn.transaction():
            if (await conn.execute(SQL["take_pending"], (request_id, now))).rowcount != 1:
                return False
            await conn.execute(SQL["insert_grant"], grant_values(grant))
            await conn.execute(SQL["insert_code"], code_values(code))
        return True

    async def code(self, code_hash: str) -> IssuedCode | None:
        rows = await self._execute(SQL["code"], (code_hash,))
        return code_from_row(rows[0]) if rows else None

    async def redeem_code(self, code_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        return await self._spend_then_issue(SQL["use_code"], (now, code_hash, now), tokens)

    async def rotate_refresh(self, token_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        return await self._spend_then_issue(SQL["spend_refresh"], (now, token_hash, now), tokens)

    async def _spend_then_issue(self, spend: str, params: tuple[Any, ...], tokens: Sequence[IssuedToken]) -> bool:
        async with self._connection() as conn, conn.transaction():
            # The row lock this UPDATE takes makes a racing spend wait, then find the row spent: one winner.
            if (await conn.execute(spend, params)).rowcount != 1:
                return False
            async with conn.cursor() as cursor:
                await cursor.executemany(SQL["insert_token"], [token_values(t) for t in tokens])
        return True

    async def token(self, token_hash: str) -> tuple[IssuedToken, Grant] | None:
        rows = await self._execute(SQL["token"], (token_hash,))
        return (token_from_row(rows[0]), grant_from_row(rows[0], "g_")) if rows else None

    async def revoke_grant(self, grant_id: str, now: float) -> bool:
        async with self._connection() as conn, conn.transaction():
            ended = (await conn.execute(SQL["end_grant"], (now, grant_id))).rowcount == 1
            await conn.execute(SQL["drop_tokens"], (grant_id,))
            await conn.execute(SQL["drop_codes"], (grant_id,))
        return ended

    async def grants(self, *, token_owner: str | None = None) -> list[Grant]:
        if token_owner is None:
            rows = await self._execute(SQL["grants"])
        else:
            rows = await self._execute(SQL["grants_of"], (token_owner,))
        return [grant_from_row(r) for r in rows]

    async def prune_grants(self, now: float, unused_client_s: float) -> None:
        async with self._connection() as conn, conn.transaction():
            for name in ("prune_pending", "prune_codes", "prune_tokens"):
                await conn.execute(SQL[name], (now,))
            await conn.execute(SQL["prune_clients"], (now - unused_client_s,))
