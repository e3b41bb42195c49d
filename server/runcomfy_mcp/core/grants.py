"""The grant service: a person's yes on the consent page becomes a grant; codes and tokens follow its rules.

The person's RunComfy token is checked with RunComfy (a cheap authenticated read) before anything is issued,
sealed before it is stored, and opened only to pay for that grant's own requests. A code used twice, or a
rotated refresh token presented again, means one of them was stolen: the grant ends (OAuth 2.1 §4.1.3, §4.3.1).
Nothing is cached between requests, so a revoked grant is refused by every replica's next request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from runcomfy_mcp.core.sealing import Sealer
from runcomfy_mcp.domain.grants import (
    ACCESS_TOKEN_S,
    CLIENT_UNUSED_S,
    CODE_S,
    MAX_CONSENT_TRIES,
    PENDING_S,
    REFRESH_TOKEN_S,
    Grant,
    IssuedCode,
    IssuedToken,
    PendingAuthorization,
    TokenPair,
    new_secret,
    secret_hash,
)
from runcomfy_mcp.domain.ids import check_token
from runcomfy_mcp.domain.views import fingerprint
from runcomfy_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    AuthorizationRefusedError,
    InvalidTokenError,
    PermissionDeniedError,
    RateLimitError,
    RunComfyError,
    UpstreamServerError,
)
from runcomfy_mcp.store.grants import GrantStore

logger = logging.getLogger(__name__)

TokenCheck = Callable[[str], Awaitable[object]]  # an authenticated read with this token; raises when refused
PRUNE_EVERY_S = 600.0
TICKET_S = 900  # how long a listing of one's connections may be used to end them

ACCESS_PREFIX = "rcm_at_"
REFRESH_PREFIX = "rcm_rt_"
CODE_PREFIX = "rcm_code_"


@dataclass(frozen=True)
class GrantedAccess:
    """A live access token: whose grant it is, and the RunComfy token that grant pays with."""

    token: IssuedToken
    grant: Grant
    runcomfy_token: str


class GrantService:
    def __init__(
        self,
        store: GrantStore,
        sealer: Sealer,
        check_runcomfy_token: TokenCheck,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._check = check_runcomfy_token
        self._clock = clock
        self._pruned_at = float("-inf")

    # ------------------------------------------------------------ apps

    async def save_client(self, client_id: str, document: Mapping[str, Any]) -> None:
        """An app registered itself; a client secret it was given is sealed like a RunComfy token."""
        stored = dict(document)
        if stored.get("client_secret"):
            stored["client_secret"] = self._sealer.seal(str(stored["client_secret"]), f"client:{client_id}")
        await self._store.save_client(client_id, json.dumps(stored), self._clock())

    async def client(self, client_id: str) -> dict[str, Any] | None:
        raw = await self._store.client(client_id)
        if raw is None:
            return None
        document: dict[str, Any] = json.loads(raw)
        if document.get("client_secret"):
            secret = self._sealer.open(str(document["client_secret"]), f"client:{client_id}")
            if secret is None:
                logger.warning("OAuth: app %s holds a secret the configured keys cannot open", client_id[:40])
                return None
            document["client_secret"] = secret
        return document

    # ------------------------------------------------------------ the consent page

    async def begin(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        redirect_uri_explicit: bool,
        code_challenge: str,
        state: str | None,
        scopes: Sequence[str],
        resource: str,
    ) -> PendingAuthorization:
        now = self._clock()
        await self._prune(now)
        pending = PendingAuthorization(
            request_id=new_secret(""),
            client_id=client_id,
            redirect_uri=redirect_uri,
            redirect_uri_explicit=redirect_uri_explicit,
            code_challenge=code_challenge,
            state=state,
            scopes=tuple(scopes),
            resource=resource,
            csrf=new_secret(""),
            expires_at=now + PENDING_S,
        )
        await self._store.save_pending(pending)
        return pending

    async def pending(self, request_id: str) -> PendingAuthorization | None:
        return await self._store.pending(request_id, self._clock())

    async def deny(self, pending: PendingAuthorization) -> None:
        await self._store.discard_pending(pending.request_id)

    async def consent(self, pending: PendingAuthorization, runcomfy_token: str, client_name: str) -> str:
        """The code for the app, once RunComfy accepted the token; AuthorizationRefusedError says why not."""
        token = runcomfy_token.strip()
        if not token:
            raise AuthorizationRefusedError("Paste your RunComfy API token (Profile → API keys) to connect.")
        try:
            check_token(token, "you pasted")
            await self._check(token)
        except (InvalidTokenError, AuthenticationError, PermissionDeniedError) as exc:
            await self._count_refusal(pending, exc)
        except (APIConnectionError, UpstreamServerError, RateLimitError) as exc:
            raise AuthorizationRefusedError(
                "RunComfy could not be reached to check the token, so nothing was stored. Try again in a minute."
            ) from exc
        except APIStatusError as exc:
            raise AuthorizationRefusedError(
                f"RunComfy answered the token check with an error (HTTP {exc.status_code}), so nothing was stored. "
                "Try again in a minute."
            ) from exc
        except RunComfyError as exc:
            raise AuthorizationRefusedError(
                "RunComfy's answer to the token check could not be read, so nothing was stored. Try again later."
            ) from exc
        now = self._clock()
        grant_id = new_secret("")
        grant = Grant(
            grant_id=grant_id,
            client_id=pending.client_id,
            client_name=client_name,
            sealed_token=self._sealer.seal(token, grant_id),
            token_owner=fingerprint(token),
            created_at=now,
        )
        code = new_secret(CODE_PREFIX)
        issued = IssuedCode(
            code_hash=secret_hash(code),
            grant_id=grant_id,
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            redirect_uri_explicit=pending.redirect_uri_explicit,
            code_challenge=pending.code_challenge,
            scopes=pending.scopes,
            resource=pending.resource,
            expires_at=now + CODE_S,
        )
        if not await self._store.open_grant(pending.request_id, grant, issued, now):
            raise AuthorizationRefusedError(
                "This sign-in was already answered or has expired. Start connecting again from your app.", final=True
            )
        logger.info("OAuth: %r was granted access (grant %s…)", client_name, grant_id[:8])
        return code

    async def _count_refusal(self, pending: PendingAuthorization, cause: RunComfyError) -> NoReturn:
        tries = await self._store.count_try(pending.request_id)
        if tries >= MAX_CONSENT_TRIES or tries == 0:
            await self._store.discard_pending(pending.request_id)
            raise AuthorizationRefusedError(
                "RunComfy did not accept the tokens pasted here, and this sign-in has had its last try. Check the "
                "token in your RunComfy profile (Profile → API keys), then start connecting again from your app.",
                final=True,
            ) from cause
        reason = (
            cause.message
            if isinstance(cause, InvalidTokenError)
            else "RunComfy did not accept this token: it may be mistyped, revoked or expired. Nothing was stored."
        )
        left = MAX_CONSENT_TRIES - tries
        raise AuthorizationRefusedError(
            f"{reason} Copy it again from your RunComfy profile (Profile → API keys). "
            f"{left} {'try' if left == 1 else 'tries'} left."
        ) from cause

    # ------------------------------------------------------------ the token endpoint

    async def code(self, code: str, client_id: str) -> IssuedCode | None:
        record = await self._store.code(secret_hash(code))
        if record is None or record.client_id != client_id:
            return None
        if record.used_at is not None:
            await self._end(record.grant_id, "an authorization code was used twice")
            return None
        return record

    async def exchange_code(self, record: IssuedCode) -> TokenPair | None:
        pair, tokens = self._issue(record.grant_id, record.client_id, record.scopes, record.resource)
        if not await self._store.redeem_code(record.code_hash, tokens, self._clock()):
            await self._end(record.grant_id, "an authorization code was used twice at once")
            return None
        return pair

    async def refresh_token(self, token: str, client_id: str) -> IssuedToken | None:
        found = await self._store.token(secret_hash(token))
        if found is None:
            return None
        issued, _ = found
        if issued.kind != "refresh" or issued.client_id != client_id:
            return None
        if issued.spent_at is not None:
            await self._end(issued.grant_id, "a rotated refresh token was presented again")
            return None
        return issued if issued.expires_at >= self._clock() else None

    async def rotate(self, issued: IssuedToken, scopes: Sequence[str]) -> TokenPair | None:
        pair, tokens = self._issue(issued.grant_id, issued.client_id, tuple(scopes), issued.resource)
        if not await self._store.rotate_refresh(issued.token_hash, tokens, self._clock()):
            await self._end(issued.grant_id, "a refresh token was used twice at once")
            return None
        return pair

    def _issue(
        self, grant_id: str, client_id: str, scopes: Sequence[str], resource: str
    ) -> tuple[TokenPair, list[IssuedToken]]:
        now = self._clock()
        access, refresh = new_secret(ACCESS_PREFIX), new_secret(REFRESH_PREFIX)
        tokens = [
            IssuedToken(
                secret_hash(access), "access", grant_id, client_id, tuple(scopes), resource, now + ACCESS_TOKEN_S
            ),
            IssuedToken(
                secret_hash(refresh), "refresh", grant_id, client_id, tuple(scopes), resource, now + REFRESH_TOKEN_S
            ),
        ]
        return TokenPair(access, refresh, ACCESS_TOKEN_S, tuple(scopes)), tokens

    # ------------------------------------------------------------ every MCP request

    async def access(self, token: str) -> GrantedAccess | None:
        found = await self._store.token(secret_hash(token))
        if found is None:
            return None
        issued, grant = found
        if issued.kind != "access" or issued.expires_at < self._clock():
            return None
        runcomfy_token = self._sealer.open(grant.sealed_token, grant.grant_id)
        if runcomfy_token is None:
            logger.warning(
                "OAuth: grant %s… holds a RunComfy token the configured keys cannot open (was the key changed?); "
                "its app must connect again",
                grant.grant_id[:8],
            )
            return None
        return GrantedAccess(issued, grant, runcomfy_token)

    # ------------------------------------------------------------ ending grants

    async def revoke_grant(self, grant_id: str) -> bool:
        return await self._store.revoke_grant(grant_id, self._clock())

    async def grants(self, *, token_owner: str | None = None) -> list[Grant]:
        return await self._store.grants(token_owner=token_owner)

    async def grants_of(self, runcomfy_token: str) -> list[tuple[Grant, str]]:
        """The live grants made with this RunComfy token, each with a ticket that ends it for a while: whoever holds
        the token may end them, and only those (the ticket names the grant and the token's fingerprint)."""
        grants = await self._store.grants(token_owner=fingerprint(runcomfy_token.strip()))
        return [(grant, self._sealer.seal(grant.grant_id, f"disconnect:{grant.grant_id}")) for grant in grants]

    async def disconnect(self, ticket: str, grant_id: str) -> bool:
        """End the grant a ticket from `grants_of` names; False when the ticket is not for it or is too old."""
        if self._sealer.open(ticket, f"disconnect:{grant_id}", max_age_s=TICKET_S) != grant_id:
            return False
        if await self._store.revoke_grant(grant_id, self._clock()):
            logger.info("OAuth: grant %s… was disconnected by its person", grant_id[:8])
        return True

    async def _end(self, grant_id: str, why: str) -> None:
        if await self._store.revoke_grant(grant_id, self._clock()):
            logger.warning("OAuth: grant %s… ended because %s", grant_id[:8], why)

    async def _prune(self, now: float) -> None:
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            await self._store.prune_grants(now, CLIENT_UNUSED_S)
