"""A small internet for attack tests: public addresses routed to loopback servers, under the real guard.

The server's guarded transport, connection pool and address checks are the real ones; only the
sockets below them are routed here, so "93.184.216.34" can be a hostile image host on this machine.
TLS is not spoken (the test servers are plain HTTP): the handshake records the server name asked for,
so a test can see that SNI still names the host while the socket goes to the checked address.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import AsyncIterator, Iterable
from functools import lru_cache
from typing import Any

import anyio
import httpcore
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from images import make_image

HOSTILE_IP = "93.184.216.34"
HOSTILE_HOST = "evil-images.example"
INTERNAL_HOST = "internal.example"


class FakeInternet(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.routes: dict[str, int] = {}  # address → loopback port of the server playing it
        self.connected: list[str] = []
        self.server_names: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        if host not in self.routes:
            raise httpcore.ConnectError(f"no route to {host}")
        stream = await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", self.routes[host], timeout=timeout)
        return _PlainTLS(stream, self.server_names)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("no unix sockets on the internet")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _PlainTLS(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, server_names: list[str | None]) -> None:
        self._inner = inner
        self._server_names = server_names

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self._server_names.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return None if info == "ssl_object" else self._inner.get_extra_info(info)


def resolver_for(answers: dict[str, list[str]]) -> Any:
    async def resolve(host: str) -> list[str]:
        if host in answers:
            return answers[host]
        raise OSError(f"cannot resolve {host}")

    return resolve


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A valid PNG header followed by 200 MiB of zeros, gzipped to about 200 KB."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as out:
        out.write(make_image(640, 480))
        zeros = b"\0" * (1024 * 1024)
        for _ in range(200):
            out.write(zeros)
    return buffer.getvalue()


class HostileHost:
    """An image host that misbehaves on purpose; it counts the requests it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.hosts_seen: list[str] = []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ok.png", self._ok),
                Route("/drip.png", self._drip),
                Route("/bomb.png", self._bomb),
                Route("/to-internal.png", self._to_internal),
                Route("/secret.png", self._ok),
            ]
        )

    def _seen(self, request: Request) -> None:
        self.requests.append(request.url.path)
        self.hosts_seen.append(request.headers.get("host", ""))

    async def _ok(self, request: Request) -> Response:
        self._seen(request)
        return Response(make_image(640, 480), media_type="image/png")

    async def _drip(self, request: Request) -> Response:
        self._seen(request)
        image = make_image(640, 480)

        async def one_byte_at_a_time() -> AsyncIterator[bytes]:
            for i in range(len(image)):
                yield image[i : i + 1]
                await anyio.sleep(0.5)

        return StreamingResponse(one_byte_at_a_time(), media_type="image/png")

    async def _bomb(self, request: Request) -> Response:
        self._seen(request)
        return Response(gzip_bomb(), media_type="image/png", headers={"content-encoding": "gzip"})

    async def _to_internal(self, request: Request) -> Response:
        self._seen(request)
        return Response(status_code=302, headers={"location": f"https://{INTERNAL_HOST}/secret.png"})
