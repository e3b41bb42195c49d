"""The HTTP server `--transport http` starts: uvicorn, with the limits a shared port needs.

uvicorn on its own neither bounds how long a client may take to send a request nor how many
connections it may hold: a few hundred clients sending their headers a byte at a time (slowloris)
kept every connection, and with them every file the process may open, so nobody else got in. Here
each connection must deliver a request's head within `RUNCOMFY_HTTP_HEADER_TIMEOUT_S` and its body
within `RUNCOMFY_HTTP_BODY_TIMEOUT_S` (a 408, then the connection is closed), the server holds at
most `RUNCOMFY_HTTP_MAX_CONNECTIONS` connections and one address at most
`RUNCOMFY_HTTP_CONNECTIONS_PER_ADDRESS` (beyond them a 503 at once), and the process may open
enough files for all of them. What a reverse proxy in front must add is in the README.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
import uvicorn
from mcp.server import Server
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from runcomfy_mcp.domain.amounts import MIB
from runcomfy_mcp.mcp.callers import CallerIdentity
from runcomfy_mcp.mcp.http_limits import BodyBudget, SessionGate, SessionLimits, install
from runcomfy_mcp.settings import Settings

logger = logging.getLogger(__name__)

FILES_KEPT_SPARE = 256  # open files beyond the connections: the history, downloads, upstream connections, logs


@dataclass
class ConnectionLimits:
    max_connections: int
    per_address: int
    header_timeout_s: float
    body_timeout_s: float
    trusted: frozenset[str]  # reverse proxies: many clients behind one address, so no per-address limit
    open: Counter[str] = field(default_factory=Counter)  # open connections by address
    _warned_at: float = 0.0

    def admit(self, address: str) -> str | None:
        """Why a new connection from `address` is refused, or None (it is then counted until `release`)."""
        if sum(self.open.values()) >= self.max_connections:
            return "this server has too many open connections"
        if address not in self.trusted and self.open[address] >= self.per_address:
            return "your address has too many open connections to this server"
        self.open[address] += 1
        return None

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def warn(self, why: str, address: str) -> None:
        """One line every ten seconds at most: a flood must not flood the log too."""
        now = time.monotonic()
        if now - self._warned_at >= 10:
            self._warned_at = now
            logger.warning("refusing connections: %s (the latest from %s; %d open)", why, address, len(self))

    def __len__(self) -> int:
        return sum(self.open.values())


def _raw_response(status: str, message: str, extra: str = "") -> bytes:
    body = message.encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection budget and deadlines for a request's head and body.

    The head's deadline runs from the connection's start (on a kept-alive connection, from the next request's first
    byte) until the head is complete, however the bytes trickle in; the body's from then until the body is complete.
    A request being served, or a response streaming, has no deadline here."""

    limits: ClassVar[ConnectionLimits]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else "unknown"
        self._counted = False
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        why = self.limits.admit(self._address)
        if why is not None:
            self.limits.warn(why, self._address)
            refusal = _raw_response("503 Service Unavailable", f"{why}; try again shortly\n", "retry-after: 5\r\n")
            transport.write(refusal)
            transport.close()
            return
        self._counted = True
        self._arm("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        if self._counted:
            self._counted = False
            self.limits.release(self._address)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is None and self.conn.their_state is h11.IDLE:
            self._arm("head")  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        self._follow()

    def _follow(self) -> None:
        """Move the deadline along as the request arrives: the body's once the head is in, none once the body is.
        Between requests on a kept-alive connection uvicorn's keep-alive timeout applies, not these."""
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        elif state is not h11.IDLE:
            self._arm(None)
        elif self._phase == "body":
            self._arm(None)  # a request that ended (and a new cycle began) before its body was reported done

    def _arm(self, phase: str | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None and not self.transport.is_closing():
            seconds = self.limits.header_timeout_s if phase == "head" else self.limits.body_timeout_s
            self._deadline = self.loop.call_later(seconds, self._too_slow, phase, seconds)

    def _too_slow(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing() or phase != self._phase:
            return
        logger.debug("closing a connection from %s: the request's %s took over %g s", self._address, phase, seconds)
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # nothing of a response is out yet
            what = "headers" if phase == "head" else "body"
            late = _raw_response("408 Request Timeout", f"the request's {what} took over {seconds:g} s\n")
            self.transport.write(late)
        self.transport.close()


def protocol_for(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    return type("Guarded", (GuardedH11Protocol,), {"limits": limits})


def allow_open_files(wanted: int) -> int:
    """Raise this process's soft limit of open files towards `wanted` (up to the hard limit); the limit it has."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else int(soft)


def connection_limits(settings: Settings) -> ConnectionLimits:
    wanted = settings.http_max_connections
    files = allow_open_files(wanted + FILES_KEPT_SPARE)
    if files - FILES_KEPT_SPARE < wanted:
        wanted = max(16, files - FILES_KEPT_SPARE)
        logger.warning(
            "this process may open only %d files: at most %d HTTP connections (RUNCOMFY_HTTP_MAX_CONNECTIONS is %d; "
            "raise the limit with ulimit -n)",
            files,
            wanted,
            settings.http_max_connections,
        )
    return ConnectionLimits(
        max_connections=wanted,
        per_address=settings.http_connections_per_address,
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        trusted=frozenset(trusted_proxies(settings)),
    )


def trusted_proxies(settings: Settings) -> list[str]:
    return [p.strip() for p in settings.http_trusted_proxies.split(",") if p.strip()]


def transport_options(settings: Settings, stateless: bool) -> dict[str, Any]:
    """The limits the MCP SDK's streamable HTTP transport applies itself (body size, sessions)."""
    options: dict[str, Any] = {"max_request_body_size": int(settings.http_max_body_mb * MIB)}
    if not stateless:
        options |= {"max_sessions": settings.http_max_sessions, "session_idle_timeout": settings.http_session_idle_s}
    return options


def guard_sessions(server: Server[Any], settings: Settings, identity: CallerIdentity, stateless: bool) -> None:
    """The gates in front of the transport; call after `server.streamable_http_app(...)`."""
    max_body = int(settings.http_max_body_mb * MIB)
    gates: list[Any] = [lambda app: BodyBudget(app, max_body=max_body)]
    if not stateless:
        limits = SessionLimits(
            per_caller=settings.http_sessions_per_caller,
            per_address=settings.http_sessions_per_address,
            idle_s=settings.http_session_idle_s,
        )
        security = server.session_manager.security_settings
        gates.append(lambda app: SessionGate(app, identity.caller, limits, security))
    install(server, gates)


class _NoStatelessNoise(logging.Filter):
    """A stateless transport 'terminates' a session of none after every request: not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Terminating session: None"


async def serve_http(app: ASGIApp, settings: Settings, host: str, port: int) -> None:
    """Serve `app` (the MCP server's Starlette app, gates installed) until stopped."""
    logging.getLogger("mcp.server.streamable_http").addFilter(_NoStatelessNoise())
    limits = connection_limits(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(limits),
        ws="none",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=trusted_proxies(settings),
        timeout_keep_alive=5,
    )
    await uvicorn.Server(config).serve()
