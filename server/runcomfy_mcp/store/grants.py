"""OAuth grants in the history store: the interface both backends implement, and what they share.

Kept beside the job history so that every replica sees the same apps, grants, codes and tokens: a grant
revoked on one replica is refused by the next request on any other. Codes and tokens are stored as
hashes, the RunComfy token only sealed. The writes that must not interleave (consuming a code, rotating
a refresh token, opening a grant from a pending request) each run as one conditional statement in one
transaction, so of two racing requests exactly one wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, ClassVar, Protocol

from runcomfy_mcp.domain.grants import Grant, IssuedCode, IssuedToken, PendingAuthorization


class GrantStore(Protocol):
    async def save_client(self, client_id: str, document: str, created_at: float) -> None: ...

    async def client(self, client_id: str) -> str | None: ...

    async def save_pending(self, pending: PendingAuthorization) -> None: ...

    async def pending(self, request_id: str, now: float) -> PendingAuthorization | None: ...

    async def count_try(self, request_id: str) -> int:
        """One more refused answer on the consent page; returns the count so far (0: no such request)."""
        ...

    async def discard_pending(self, request_id: str) -> None: ...

    async def open_grant(self, request_id: str, grant: Grant, code: IssuedCode, now: float) -> bool:
        """Consume the pending request and record the grant and its code, atomically; False when the request was
        already answered or has expired (a form sent twice opens one grant)."""
        ...

    async def code(self, code_hash: str) -> IssuedCode | None: ...

    async def redeem_code(self, code_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        """Mark the code used and record its tokens, atomically; False when it was used, expired or its grant ended."""
        ...

    async def token(self, token_hash: str) -> tuple[IssuedToken, Grant] | None:
        """The token and its grant while the grant lives (expiry and spending are the caller's to judge)."""
        ...

    async def rotate_refresh(self, token_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        """Spend the refresh token and record its successors, atomically; False when it was spent or expired."""
        ...

    async def revoke_grant(self, grant_id: str, now: float) -> bool:
        """End the grant: its tokens and codes go, its sealed token is emptied. False when it had already ended."""
        ...

    async def grants(self, *, token_owner: str | None = None) -> list[Grant]:
        """Live grants, newest first; only those made with one RunComfy token when `token_owner` is given."""
        ...

    async def prune_grants(self, now: float, unused_client_s: float) -> None:
        """Forget what expired: pending requests, codes, tokens, and apps registered long ago that never got a grant."""
        ...


SQLITE_TABLES = [
    "CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, document TEXT NOT NULL,"
    " created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oauth_pending (request_id TEXT PRIMARY KEY, document TEXT NOT NULL,"
    " expires_at REAL NOT NULL, tries INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS oauth_grants (grant_id TEXT PRIMARY KEY, client_id TEXT NOT NULL,"
    " client_name TEXT NOT NULL, sealed_token TEXT NOT NULL, token_owner TEXT NOT NULL, created_at REAL NOT NULL,"
    " revoked_at REAL)",
    "CREATE INDEX IF NOT EXISTS oauth_grants_by_token_owner ON oauth_grants (token_owner)",
    "CREATE TABLE IF NOT EXISTS oauth_codes (code_hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL,"
    " document TEXT NOT NULL, expires_at REAL NOT NULL, used_at REAL)",
    "CREATE TABLE IF NOT EXISTS oauth_tokens (token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL,"
    " grant_id TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, resource TEXT NOT NULL,"
    " expires_at REAL NOT NULL, spent_at REAL)",
    "CREATE INDEX IF NOT EXISTS oauth_tokens_by_grant ON oauth_tokens (grant_id)",
]
POSTGRES_TABLES = [s.replace(" REAL", " DOUBLE PRECISION") for s in SQLITE_TABLES]

GRANT_COLUMNS = "grant_id, client_id, client_name, sealed_token, token_owner, created_at, revoked_at"
TOKEN_COLUMNS = "token_hash, kind, grant_id, client_id, scopes, resource, expires_at, spent_at"


def live_grant(p: str) -> str:
    """A condition: the grant of the row at hand (`grant_id`) has not ended."""
    return f"EXISTS (SELECT 1 FROM oauth_grants g WHERE g.grant_id = {p} AND g.revoked_at IS NULL)"


def statements(p: str) -> dict[str, str]:
    """Every statement the backends run, written once, with `p` as the driver's placeholder."""
    return {
        "save_client": f"INSERT INTO oauth_clients (client_id, document, created_at) VALUES ({p}, {p}, {p})"
        " ON CONFLICT (client_id) DO UPDATE SET document = excluded.document",
        "client": f"SELECT document FROM oauth_clients WHERE client_id = {p}",
        "save_pending": "INSERT INTO oauth_pending (request_id, document, expires_at, tries)"
        f" VALUES ({p}, {p}, {p}, 0)",
        "pending": "SELECT request_id, document, expires_at, tries FROM oauth_pending"
        f" WHERE request_id = {p} AND expires_at >= {p}",
        "count_try": f"UPDATE oauth_pending SET tries = tries + 1 WHERE request_id = {p}",
        "tries": f"SELECT tries FROM oauth_pending WHERE request_id = {p}",
        "discard_pending": f"DELETE FROM oauth_pending WHERE request_id = {p}",
        "take_pending": f"DELETE FROM oauth_pending WHERE request_id = {p} AND expires_at >= {p}",
        "insert_grant": f"INSERT INTO oauth_grants ({GRANT_COLUMNS}) VALUES ({', '.join([p] * 7)})",
        "insert_code": f"INSERT INTO oauth_codes (code_hash, grant_id, document, expires_at, used_at)"
        f" VALUES ({p}, {p}, {p}, {p}, NULL)",
        "code": f"SELECT code_hash, grant_id, document, expires_at, used_at FROM oauth_codes WHERE code_hash = {p}",
        "use_code": f"UPDATE oauth_codes SET used_at = {p} WHERE code_hash = {p} AND used_at IS NULL"
        f" AND expires_at >= {p} AND {live_grant('oauth_codes.grant_id')}",
        "insert_token": f"INSERT INTO oauth_tokens ({TOKEN_COLUMNS}) VALUES ({', '.join([p] * 8)})",
        "token": "SELECT "
        + ", ".join(f"t.{c}" for c in TOKEN_COLUMNS.split(", "))
        + ", "
        + ", ".join(f"g.{c} AS g_{c}" for c in GRANT_COLUMNS.split(", "))
        + " FROM oauth_tokens t JOIN oauth_grants g ON g.grant_id = t.grant_id"
        f" WHERE t.token_hash = {p} AND g.revoked_at IS NULL",
        "spend_refresh": f"UPDATE oauth_tokens SET spent_at = {p} WHERE token_hash = {p} AND kind = 'refresh'"
        f" AND spent_at IS NULL AND expires_at >= {p} AND {live_grant('oauth_tokens.grant_id')}",
        "end_grant": f"UPDATE oauth_grants SET revoked_at = {p}, sealed_token = '' WHERE grant_id = {p}"
        " AND revoked_at IS NULL",
        "drop_tokens": f"DELETE FROM oauth_tokens WHERE grant_id = {p}",
        "drop_codes": f"DELETE FROM oauth_codes WHERE grant_id = {p}",
        "grants": f"SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE revoked_at IS NULL ORDER BY created_at DESC",
        "grants_of": f"SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE revoked_at IS NULL AND token_owner = {p}"
        " ORDER BY created_at DESC",
        "prune_pending": f"DELETE FROM oauth_pending WHERE expires_at < {p}",
        "prune_codes": f"DELETE FROM oauth_codes WHERE expires_at < {p}",
        "prune_tokens": f"DELETE FROM oauth_tokens WHERE expires_at < {p}",
        "prune_clients": f"DELETE FROM oauth_clients WHERE created_at < {p} AND NOT EXISTS"
        " (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)",
    }


Step = tuple[str, tuple[Any, ...]]  # a statement's name in `statements` and its values


class SQLGrantStore:
    """The `GrantStore` methods, written once over the statements above. A backend supplies its statements (`SQL`,
    in its driver's placeholder), one statement run alone (`_rows`), several in one transaction (`_atomically`),
    and `count_try` (which PostgreSQL answers in one statement and SQLite in two)."""

    SQL: ClassVar[dict[str, str]]

    async def _rows(self, name: str, params: tuple[Any, ...] = ()) -> list[Mapping[str, Any]]:
        """Run statement `name` alone; the rows it returns (none for a write)."""
        raise NotImplementedError

    async def _atomically(self, steps: Sequence[Step], *, guarded: bool) -> bool:
        """Run `steps` in order in one transaction; whether the first changed exactly one row. When `guarded`,
        the others run only if it did: the first is the condition that makes two racing requests one winner."""
        raise NotImplementedError

    async def save_client(self, client_id: str, document: str, created_at: float) -> None:
        await self._rows("save_client", (client_id, document, created_at))

    async def client(self, client_id: str) -> str | None:
        rows = await self._rows("client", (client_id,))
        return str(rows[0]["document"]) if rows else None

    async def save_pending(self, pending: PendingAuthorization) -> None:
        await self._rows("save_pending", pending_values(pending))

    async def pending(self, request_id: str, now: float) -> PendingAuthorization | None:
        rows = await self._rows("pending", (request_id, now))
        return pending_from_row(rows[0]) if rows else None

    async def discard_pending(self, request_id: str) -> None:
        await self._rows("discard_pending", (request_id,))

    async def open_grant(self, request_id: str, grant: Grant, code: IssuedCode, now: float) -> bool:
        steps = [
            ("take_pending", (request_id, now)),
            ("insert_grant", grant_values(grant)),
            ("insert_code", code_values(code)),
        ]
        return await self._atomically(steps, guarded=True)

    async def code(self, code_hash: str) -> IssuedCode | None:
        rows = await self._rows("code", (code_hash,))
        return code_from_row(rows[0]) if rows else None

    async def redeem_code(self, code_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        issue = [("insert_token", token_values(t)) for t in tokens]
        return await self._atomically([("use_code", (now, code_hash, now)), *issue], guarded=True)

    async def token(self, token_hash: str) -> tuple[IssuedToken, Grant] | None:
        rows = await self._rows("token", (token_hash,))
        return (token_from_row(rows[0]), grant_from_row(rows[0], "g_")) if rows else None

    async def rotate_refresh(self, token_hash: str, tokens: Sequence[IssuedToken], now: float) -> bool:
        issue = [("insert_token", token_values(t)) for t in tokens]
        return await self._atomically([("spend_refresh", (now, token_hash, now)), *issue], guarded=True)

    async def revoke_grant(self, grant_id: str, now: float) -> bool:
        steps = [("end_grant", (now, grant_id)), ("drop_tokens", (grant_id,)), ("drop_codes", (grant_id,))]
        return await self._atomically(steps, guarded=False)

    async def grants(self, *, token_owner: str | None = None) -> list[Grant]:
        rows = await (self._rows("grants") if token_owner is None else self._rows("grants_of", (token_owner,)))
        return [grant_from_row(r) for r in rows]

    async def prune_grants(self, now: float, unused_client_s: float) -> None:
        expired: list[Step] = [(name, (now,)) for name in ("prune_pending", "prune_codes", "prune_tokens")]
        await self._atomically([*expired, ("prune_clients", (now - unused_client_s,))], guarded=False)


def _document(fields: PendingAuthorization | IssuedCode, kept_apart: tuple[str, ...]) -> str:
    """The fields of a pending request or a code that have no column of their own, as one JSON document."""
    return json.dumps({k: v for k, v in asdict(fields).items() if k not in kept_apart})


def _document_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(row["document"])
    document["scopes"] = tuple(document["scopes"])
    return document


def pending_values(pending: PendingAuthorization) -> tuple[Any, ...]:
    return (pending.request_id, _document(pending, ("request_id", "expires_at", "tries")), pending.expires_at)


def pending_from_row(row: Mapping[str, Any]) -> PendingAuthorization:
    return PendingAuthorization(
        request_id=row["request_id"], expires_at=row["expires_at"], tries=int(row["tries"]), **_document_from_row(row)
    )


def grant_values(grant: Grant) -> tuple[Any, ...]:
    return tuple(getattr(grant, c) for c in GRANT_COLUMNS.split(", "))


def grant_from_row(row: Mapping[str, Any], prefix: str = "") -> Grant:
    return Grant(**{c: row[prefix + c] for c in GRANT_COLUMNS.split(", ")})


_CODE_COLUMNS = ("code_hash", "grant_id", "expires_at", "used_at")


def code_values(code: IssuedCode) -> tuple[Any, ...]:
    return (code.code_hash, code.grant_id, _document(code, _CODE_COLUMNS), code.expires_at)


def code_from_row(row: Mapping[str, Any]) -> IssuedCode:
    return IssuedCode(**{k: row[k] for k in _CODE_COLUMNS}, **_document_from_row(row))


def token_values(token: IssuedToken) -> tuple[Any, ...]:
    return (
        token.token_hash,
        token.kind,
        token.grant_id,
        token.client_id,
        json.dumps(list(token.scopes)),
        token.resource,
        token.expires_at,
        token.spent_at,
    )


def token_from_row(row: Mapping[str, Any]) -> IssuedToken:
    return IssuedToken(
        token_hash=row["token_hash"],
        kind=row["kind"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        scopes=tuple(json.loads(row["scopes"])),
        resource=row["resource"],
        expires_at=row["expires_at"],
        spent_at=row["spent_at"],
    )
