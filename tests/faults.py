"""A fault layer between the server and the loopback simulator, switched on per test.

Each fault matches a method and a path fragment and fires a number of times. Faults that
"forward" let the request reach the simulator first, so the simulator really saw it (a reset
after a submit means the job exists upstream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from runcomfy_mcp.errors import StoreError


@dataclass
class Fault:
    method: str
    path_part: str
    # "503" | "429" | "reset_before" | "reset_after" | "pool_full" | "slow" | "html" | "truncated_json" | "json"
    kind: str
    times: int = 1
    retry_after: str | None = None
    body: dict[str, object] | None = None


class FaultyTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.faults: list[Fault] = []
        self.fired: list[str] = []

    def add(self, method: str, path_part: str, kind: str, times: int = 1, **extra: object) -> None:
        self.faults.append(Fault(method, path_part, kind, times, **extra))  # type: ignore[arg-type]

    def _match(self, request: httpx.Request) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and request.method == fault.method and fault.path_part in request.url.path:
                fault.times -= 1
                self.fired.append(fault.kind)
                return fault
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._match(request)
        if fault is None:
            return await self._inner.handle_async_request(request)
        if fault.kind == "reset_before":
            raise httpx.ConnectError("connection refused")
        if fault.kind == "pool_full":  # what httpcore raises when no pooled connection frees up in time
            raise httpx.PoolTimeout("timed out waiting for a connection from the pool")
        if fault.kind == "reset_after":
            response = await self._inner.handle_async_request(request)
            await response.aread()
            raise httpx.RemoteProtocolError("server disconnected without sending a response")
        if fault.kind == "slow":
            await anyio.sleep(30)
        if fault.kind == "503":
            return httpx.Response(503, json={"error": "service unavailable"})
        if fault.kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return httpx.Response(429, json={"error": "too many requests"}, headers=headers)
        if fault.kind == "html":
            return httpx.Response(
                200, text="<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"}
            )
        if fault.kind == "truncated_json":
            return httpx.Response(
                200, content=b'{"request_id": "x", "stat', headers={"content-type": "application/json"}
            )
        if fault.kind == "json":
            return httpx.Response(200, json=fault.body)
        raise AssertionError(f"unknown fault {fault.kind}")

    async def aclose(self) -> None:
        await self._inner.aclose()


class FaultyStore:
    """A real history whose database goes away on demand: while it is away, every operation raises StoreError,
    as the backends do when their database fails. Wraps either backend."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._away = False
        self._after: str | None = None
        self.failed: list[str] = []

    def goes_away_after(self, operation: str) -> None:
        """The next `operation` succeeds; the database is gone right after it."""
        self._after = operation

    def comes_back(self) -> None:
        self._away = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name.startswith("_") or name == "aclose" or not callable(attribute):
            return attribute

        async def operation(*args: Any, **kwargs: Any) -> Any:
            if self._away:
                self.failed.append(name)
                raise StoreError(f"The job history could not be used: the database went away ({name}).")
            result = await attribute(*args, **kwargs)
            if name == self._after:
                self._away, self._after = True, None
            return result

        return operation
