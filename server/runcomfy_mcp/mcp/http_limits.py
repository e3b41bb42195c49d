"""What one HTTP caller may hold of a shared server: MCP sessions, and request bodies in memory.

A session costs the server memory for as long as it lives, so it is not free: one is opened only with a
credential (the caller's RunComfy token, or whatever the server accepts as a caller), one caller and
one client address may each hold only so many, an idle one ends soon, and the handshake that opens
one (kept for the session's life) is small. Sessionless requests (the 2026-07-28 protocol, and the
stateless transport) hold nothing between requests and pass straight through.

Request bodies are read whole before they are parsed, up to the body cap; all requests together
may hold only a few caps' worth at once, so a handful of slow or large uploads cannot take the
server's memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.errors import RunComfyError

OPENING_BODY_BYTES = 64 * 1024  # an initialize request is a few hundred bytes; what it carries is kept per session
BODIES_IN_FLIGHT = 4  # request bodies of the largest size all requests together may hold in memory at once


@dataclass(frozen=True)
class SessionLimits:
    per_caller: int
    per_address: int
    idle_s: float


@dataclass
class _Session:
    caller: str | None  # the caller's history owner (a token fingerprint); None when callers share one
    address: str
    in_flight: int = 0
    last_active: float = 0.0


def client_address(scope: Scope) -> str:
    """The client's address (a trusted reverse proxy's X-Forwarded-For already applied by the server)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def answer(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """A JSON-RPC error (no request id) as the SDK answers one at the HTTP level."""
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class SessionGate:
    """In front of a stateful MCP endpoint: admits a request that would open a session, or says why not."""

    def __init__(
        self,
        app: ASGIApp,
        caller_of: Callable[[Request], Caller],
        limits: SessionLimits,
        security: TransportSecuritySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._caller_of = caller_of
        self.limits = limits
        self._security = TransportSecurityMiddleware(security)
        self._clock = clock
        self._sessions: dict[object, _Session] = {}  # by session id; an opening one under a key of its own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if session_id is not None:
            await self._within(session_id, scope, receive, send)
        elif scope["method"] != "POST" or (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS):
            await self.app(scope, receive, send)  # sessionless (2026-07-28), or refused by the transport itself
        else:
            await self._open(scope, receive, send)

    def open_sessions(self) -> int:
        self._forget_idle()
        return len(self._sessions)

    # ------------------------------------------------------------ opening one

    async def _open(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = await self._security.validate_request(Request(scope), is_post=True)
        if refused is not None:  # a web page's request (Host, Origin) is refused as such, before any credential
            await refused(scope, receive, send)
            return
        try:
            caller = self._caller_of(Request(scope))
        except RunComfyError as exc:
            await answer(
                send,
                401,
                f"Opening an MCP session needs a credential: {exc.message}",
                {"WWW-Authenticate": 'Bearer realm="runcomfy-mcp"'},
            )
            return
        owner = caller.owner if caller.token else None
        address = client_address(scope)
        refusal = self._refusal(owner, address)
        if refusal:
            await answer(send, 429, refusal, {"Retry-After": f"{self.limits.idle_s:.0f}"})
            return
        opening = _Session(owner, address, in_flight=1)
        key = object()
        self._sessions[key] = opening  # counted while it opens (no await since the check): a burst cannot pass
        status, new_id = 0, None

        async def watch(message: Message) -> None:
            nonlocal status, new_id
            if message["type"] == "http.response.start":
                status = message["status"]
                new_id = Headers(raw=message.get("headers", [])).get(MCP_SESSION_ID_HEADER)
            await send(message)

        try:
            declared = _declared_length(scope)
            body = None if (declared or 0) > OPENING_BODY_BYTES else await _read_small_body(receive, OPENING_BODY_BYTES)
            if body is None:
                limit = OPENING_BODY_BYTES // 1024
                await answer(send, 413, f"A request that opens a session may carry at most {limit} KiB.")
                return
            await self.app(scope, _replay(body, receive), watch)
        finally:
            del self._sessions[key]
            if new_id is not None and status < 400:
                opening.in_flight, opening.last_active = 0, self._clock()
                self._sessions[new_id] = opening

    def _refusal(self, owner: str | None, address: str) -> str | None:
        self._forget_idle()
        idle_min = self.limits.idle_s / 60
        later = (
            f"Close a session you no longer use (HTTP DELETE with its Mcp-Session-Id), or wait: a session idle for "
            f"{idle_min:g} min closes by itself."
        )
        if sum(s.address == address for s in self._sessions.values()) >= self.limits.per_address:
            return f"Your address already holds {self.limits.per_address} open sessions, the most it may. {later}"
        if owner and sum(s.caller == owner for s in self._sessions.values()) >= self.limits.per_caller:
            return f"This token already holds {self.limits.per_caller} open sessions, the most it may. {later}"
        return None

    def _forget_idle(self) -> None:
        """Sessions idle past the limit: the transport has ended them (it keeps the same clock), so they no longer
        count. A little later than the transport, never earlier."""
        now = self._clock()
        expired = [
            key
            for key, s in self._sessions.items()
            if s.in_flight == 0 and now - s.last_active > self.limits.idle_s + 1
        ]
        for key in expired:
            del self._sessions[key]

    # ------------------------------------------------------------ within one

    async def _within(self, session_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            await self.app(scope, receive, send)  # unknown or ended: the transport answers 404
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        session.in_flight += 1
        try:
            await self.app(scope, receive, watch)
        finally:
            session.in_flight -= 1
            session.last_active = self._clock()
            ended = status == 404 or (scope["method"] == "DELETE" and 200 <= status < 300)
            if ended and self._sessions.get(session_id) is session:
                del self._sessions[session_id]


class BodyBudget:
    """Request bodies are held whole while a request is parsed and served: together at most `total_bytes`.

    Each request counts what it declares (Content-Length; the cap when it declares nothing) until it is answered.
    Small requests always fit; a large one beyond what is left waits for nobody: it is told to try again."""

    def __init__(self, app: ASGIApp, *, max_body: int, total_bytes: int | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.left = total_bytes if total_bytes is not None else BODIES_IN_FLIGHT * max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        size = self.max_body if declared is None else min(declared, self.max_body)
        if size > self.left:
            await answer(
                send,
                503,
                "The server is receiving too many large requests at once; try again in a few seconds.",
                {"Retry-After": "5"},
            )
            return
        self.left -= size
        try:
            await self.app(scope, receive, send)
        finally:
            self.left += size


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _read_small_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, or None once they pass `limit` bytes (the rest is left unread)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def install(server: Any, gates: list[Callable[[ASGIApp], ASGIApp]]) -> None:
    """Put `gates` in front of the server's streamable HTTP handling (after any authentication, before the body is
    read), outermost first."""
    manager = server.session_manager
    app: ASGIApp = manager.asgi_app
    for gate in reversed(gates):
        app = gate(app)
    manager.asgi_app = app
