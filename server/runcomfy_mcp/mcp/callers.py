"""Who is calling: in stdio mode the person at this machine; over HTTP, whoever brings a RunComfy token, or
(with OAuth) the grant the request's access token belongs to."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from runcomfy_mcp.domain.ids import check_token
from runcomfy_mcp.domain.views import LOCAL_CALLER, SHARED_CALLER, Caller
from runcomfy_mcp.errors import CallerTokenMissingError


@runtime_checkable
class GrantedToken(Protocol):
    """An access token the OAuth bearer middleware verified (`mcp.oauth.provider.GrantAccessToken`)."""

    def caller(self) -> Caller: ...


class CallerIdentity:
    def __init__(self, *, http: bool, shared_token: bool = False, oauth: bool = False) -> None:
        self.http = http
        self.shared_token = shared_token
        self.oauth = oauth

    def caller(self, request: Any) -> Caller:
        """The caller of one MCP request; `request` is the HTTP request the transport attached, if any."""
        if not self.http:
            return LOCAL_CALLER
        if self.oauth:
            # The SDK's bearer middleware put the verified token on the request; the header itself is never
            # forwarded: the grant's own RunComfy token pays.
            user = request.scope.get("user") if request is not None else None
            token = getattr(user, "access_token", None)
            if isinstance(token, GrantedToken):
                return token.caller()
            raise CallerTokenMissingError()
        header = str(request.headers.get("authorization", "")) if request is not None else ""
        scheme, _, token_text = header.partition(" ")
        token_text = token_text.strip()
        if scheme.lower() == "bearer" and token_text:
            check_token(token_text, "in this request's Authorization header")
            return Caller.with_token(token_text)
        if self.shared_token:
            return SHARED_CALLER
        raise CallerTokenMissingError()
