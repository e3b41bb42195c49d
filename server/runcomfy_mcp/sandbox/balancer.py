"""A round-robin load balancer in a client's HTTP layer, for trying replicas on one machine (tests, benchmarks).

Each request goes to the next replica, whichever session or call it belongs to: the harshest spread a
real balancer could give, so what works through it works behind any round-robin proxy.
"""

from __future__ import annotations

import itertools

import httpx2


class RoundRobin(httpx2.AsyncBaseTransport):
    def __init__(self, *urls: str) -> None:
        self.targets = itertools.cycle([httpx2.URL(u) for u in urls])
        self.inner = httpx2.AsyncHTTPTransport()
        self.sent: list[int] = []  # the port each request went to

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = next(self.targets)
        request.url = request.url.copy_with(host=target.host, port=target.port)
        self.sent.append(target.port or 0)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
