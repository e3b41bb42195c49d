"""The grant service behind the MCP SDK's authorization-server interface (`OAuthAuthorizationServerProvider`).

The SDK's handlers do the protocol (parameter checks, PKCE, client authentication, error shapes); this adapter
answers their questions from the grant service and turns grants into the SDK's code and token types.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.auth_utils import resource_url_from_server_url
from pydantic import AnyUrl, PrivateAttr

from runcomfy_mcp.core.grants import GrantService
from runcomfy_mcp.domain.grants import TokenPair, grant_owner
from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.mcp.oauth.clients import ClientDirectory, RegisteredClient

CONSENT_PATH = "/consent"


class GrantAccessToken(AccessToken):
    """A live access token; `subject` is its grant. The RunComfy token it pays with is private: never serialized."""

    _runcomfy_token: str = PrivateAttr(default="")

    def caller(self) -> Caller:
        assert self.subject is not None
        return Caller(token=self._runcomfy_token, owner=grant_owner(self.subject), private=True)


def same_resource(a: str, b: str) -> bool:
    return resource_url_from_server_url(a).rstrip("/") == resource_url_from_server_url(b).rstrip("/")


class GrantProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, GrantAccessToken]):
    def __init__(self, grants: Callable[[], GrantService], clients: ClientDirectory, *, issuer: str, resource: str):
        self._grants = grants
        self.clients = clients
        self.issuer = issuer.rstrip("/")
        self.resource = resource

    async def get_client(self, client_id: str) -> RegisteredClient | None:
        return await self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self.clients.register(client_info)

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        resource = params.resource or self.resource
        if not same_resource(resource, self.resource):
            raise AuthorizeError("invalid_target", f"This server issues tokens only for {self.resource}")
        pending = await self._grants().begin(
            client_id=client.client_id,
            redirect_uri=str(params.redirect_uri),
            redirect_uri_explicit=params.redirect_uri_provided_explicitly,
            code_challenge=params.code_challenge,
            state=params.state,
            scopes=params.scopes or (),
            resource=self.resource,
        )
        return f"{self.issuer}{CONSENT_PATH}?{urlencode({'request': pending.request_id})}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        record = await self._grants().code(authorization_code, client.client_id)
        if record is None:
            return None
        return AuthorizationCode(
            code=authorization_code,
            scopes=list(record.scopes),
            expires_at=record.expires_at,
            client_id=record.client_id,
            code_challenge=record.code_challenge,
            redirect_uri=AnyUrl(record.redirect_uri),
            redirect_uri_provided_explicitly=record.redirect_uri_explicit,
            resource=record.resource,
            subject=record.grant_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        grants = self._grants()
        record = await grants.code(authorization_code.code, client.client_id)
        pair = await grants.exchange_code(record) if record is not None else None
        if pair is None:
            raise TokenError("invalid_grant", "authorization code does not exist")
        return _token(pair)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        issued = await self._grants().refresh_token(refresh_token, client.client_id)
        if issued is None:
            return None
        return RefreshToken(
            token=refresh_token,
            client_id=issued.client_id,
            scopes=list(issued.scopes),
            expires_at=int(issued.expires_at),
            resource=issued.resource,
            subject=issued.grant_id,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        grants = self._grants()
        issued = await grants.refresh_token(refresh_token.token, client.client_id)
        pair = await grants.rotate(issued, scopes) if issued is not None else None
        if pair is None:
            raise TokenError("invalid_grant", "refresh token does not exist")
        return _token(pair)

    async def load_access_token(self, token: str) -> GrantAccessToken | None:
        access = await self._grants().access(token)
        if access is None:
            return None
        loaded = GrantAccessToken(
            token=token,
            client_id=access.token.client_id,
            scopes=list(access.token.scopes),
            expires_at=int(access.token.expires_at),
            resource=access.token.resource,
            subject=access.grant.grant_id,
            claims={"iss": self.issuer},
        )
        loaded._runcomfy_token = access.runcomfy_token
        return loaded

    async def revoke_token(self, token: GrantAccessToken | RefreshToken) -> None:
        if token.subject is not None:
            await self._grants().revoke_grant(token.subject)


def _token(pair: TokenPair) -> OAuthToken:
    return OAuthToken(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        scope=" ".join(pair.scopes) or None,
        refresh_token=pair.refresh_token,
    )
