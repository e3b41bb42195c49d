"""How often one address may register an app or begin a sign-in.

Both are open to anyone (apps register themselves, and a sign-in begins before anyone is known), and each leaves a
row in the history store for a while: an app for a day unless it gets a grant, a sign-in for fifteen minutes.
Unbounded, one address could fill the database's disk. A person registers an app once and signs in now and then;
many people behind one address (an office, or an app's own servers registering for its users) fit well within.
Each replica counts on its own, in memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from mcp.server.auth.routes import AUTHORIZATION_PATH, REGISTRATION_PATH
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from runcomfy_mcp.mcp.http_limits import client_address
from runcomfy_mcp.mcp.oauth.pages import notice

MAX_ADDRESSES = 10_000  # addresses remembered at once; the least recently seen is forgotten first


@dataclass(frozen=True)
class Rate:
    count: int
    window_s: float


REGISTRATIONS = Rate(count=120, window_s=3600)  # apps registered by one address in an hour
SIGN_INS = Rate(count=120, window_s=900)  # sign-ins begun from one address in fifteen minutes (a sign-in's life)


class AddressRate:
    """A sliding window of events per address."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, address: str) -> float | None:
        """Counts one event from `address`; or, when its window is full, counts nothing and says how many seconds
        until one is allowed."""
        now = self._clock()
        times = self._seen.get(address)
        if times is None:
            if len(self._seen) >= MAX_ADDRESSES:
                self._seen.popitem(last=False)
            times = self._seen[address] = deque()
        else:
            self._seen.move_to_end(address)
        while times and now - times[0] >= self.rate.window_s:
            times.popleft()
        if len(times) >= self.rate.count:
            return self.rate.window_s - (now - times[0])
        times.append(now)
        return None


class SignInLimits:
    """In front of the OAuth app: a registration or an authorization request beyond its address's rate is answered
    429 (with Retry-After) and never reaches the handler that would store it."""

    def __init__(
        self,
        app: ASGIApp,
        registrations: Rate = REGISTRATIONS,
        sign_ins: Rate = SIGN_INS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._registrations = AddressRate(registrations, clock)
        self._sign_ins = AddressRate(sign_ins, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        path, method = scope["path"], scope["method"]
        if path == REGISTRATION_PATH and method == "POST":
            wait = self._registrations.take(client_address(scope))
            if wait is None:
                return None
            count, hours = self._registrations.rate.count, self._registrations.rate.window_s / 3600
            return JSONResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": f"This address registered {count} apps in {hours:g} h, the most it may; "
                    "an app registers once and keeps its client_id.",
                },
                status_code=429,
                headers={"Retry-After": f"{wait:.0f}", "Cache-Control": "no-store"},
            )
        if path == AUTHORIZATION_PATH and method in ("GET", "POST"):
            wait = self._sign_ins.take(client_address(scope))
            if wait is None:
                return None
            count, minutes = self._sign_ins.rate.count, self._sign_ins.rate.window_s / 60
            refused = notice(
                "Too many sign-ins",
                f"{count} sign-ins began from your address in the last {minutes:g} minutes, the most this server "
                f"allows. Try again in {max(1, round(wait / 60))} min.",
                429,
            )
            refused.headers["Retry-After"] = f"{wait:.0f}"
            return refused
        return None
