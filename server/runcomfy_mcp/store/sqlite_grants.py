"""OAuth grants in the SQLite history (the `GrantStore` half of `SQLiteStore`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

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

T = TypeVar("T")
SQL = statements("?")


@contextmanager
def _transaction(c: sqlite3.Connection) -> Iterator[None]:
    c.execute("BEGIN IMMEDIATE")  # the write lock first: the check and the writes cannot interleave
    try:
        yield
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


class SQLiteGrants:
    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's: one connection, one worker thread at a time

    async def save_client(self, client_id: str, document: str, created_at: float) -> None:
        await self._run(lambda c: c.execute(SQL["save_client"], (client_id, document, created_at)))

    async def client(self, client_id: str) -> str | None:
        row = await self._run(lambda c: c.execute(SQL["client"], (client_id,)).fetchone())
        return str(row["document"]) if row else None

    async def save_pending(self, pending: PendingAuthorization) -> None:
        await self._run(lambda c: c.execute(SQL["save_pending"], pending_values(pending)))

    async def pending(self, request_id: str, now: float) -> PendingAuthorization | None:
        row = await self._run(lambda c: c.execute(SQL["pending"], (request_id, now)).fetchone())
        return pending_from_row(row) if row else None

    async def count_try(self, request_id: str) -> int:
        def work(c: sqlite3.Connection) -> int:
            with _transaction(c):
                c.execute(SQL["count_try"], (request_id,))
                row = c.execute(SQL["tries"], (request_id,)).fetchone()
            return int(row["tries"]) if row else 0

        return await self._run(work)

    async def discard_pending(self, request_id: str) -> None:
        await self._run(lambda c: c.execute(SQL["discard_pending"], (request_id,)))

    async def open_grant(self, request_id: str, grant: Grant, code: IssuedCode, now: float) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                if c.execute(SQL["take_pending"], (request_id, now)).rowcount != 1:
                    return False
                c.execute(SQL["insert_grant"], grant_values(grant))
                c.execute(SQL["insert_code"], code_values(code))
            return True

        return await self._run(work)

    async def code(self, code_hash: str) -> IssuedCode | None:
        row = await self._run(lambda c: c.execute(SQL["code"], (code_hash,)).fetchone())
        return code_from_row(row) if row else None

    async def redeem_code(self, code_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                if c.execute(SQL["use_code"], (now, code_hash, now)).rowcount != 1:
                    return False
                c.executemany(SQL["insert_token"], [token_values(t) for t in tokens])
            return True

        return await self._run(work)

    async def token(self, token_hash: str) -> tuple[IssuedToken, Grant] | None:
        row = await self._run(lambda c: c.execute(SQL["token"], (token_hash,)).fetchone())
        return (token_from_row(row), grant_from_row(row, "g_")) if row else None

    async def rotate_refresh(self, token_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                if c.execute(SQL["spend_refresh"], (now, token_hash, now)).rowcount != 1:
                    return False
                c.executemany(SQL["insert_token"], [token_values(t) for t in tokens])
            return True

        return await self._run(work)

    async def revoke_grant(self, grant_id: str, now: float) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                ended = c.execute(SQL["end_grant"], (now, grant_id)).rowcount == 1
                c.execute(SQL["drop_tokens"], (grant_id,))
                c.execute(SQL["drop_codes"], (grant_id,))
            return ended

        return await self._run(work)

    async def grants(self, *, token_owner: str | None = None) -> list[Grant]:
        if token_owner is None:
            rows = await self._run(lambda c: c.execute(SQL["grants"]).fetchall())
        else:
            rows = await self._run(lambda c: c.execute(SQL["grants_of"], (token_owner,)).fetchall())
        return [grant_from_row(r) for r in rows]

    async def prune_grants(self, now: float, unused_client_s: float) -> None:
        def work(c: sqlite3.Connection) -> None:
            with _transaction(c):
                for name in ("prune_pending", "prune_codes", "prune_tokens"):
                    c.execute(SQL[name], (now,))
                c.execute(SQL["prune_clients"], (now - unused_client_s,))

        await self._run(work)
