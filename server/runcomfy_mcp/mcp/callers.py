"""Who is calling: in stdio mode the person at this machine; over HTTP, whoever brings a RunComfy token."""

from __future__ import annotations

from typing import Any

from runcomfy_mcp.domain.ids import check_token
from runcomfy_mcp.domain.views import LOCAL_CALLER, SHARED_CALLER, Caller
from runcomfy_mcp.errors import CallerTokenMissingError


class CallerIdentity:
    def __init__(self, *, http: bool, shared_token: bool = False) -> None:
        self.http = http
        self.shared_token = shared_token

    def caller(self, request: Any) -> Caller:
        """The caller of one MCP request; `request` is the HTTP request the transport attached, if any."""
        if not self.http:
            return LOCAL_CALLER
        header = str(request.headers.get("authorization", "")) if request is not None else ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            check_token(token, "in this request's Authorization header")
            return Caller.with_token(token)
        if self.shared_token:
            return SHARED_CALLER
        raise CallerTokenMissingError()
