"""Serve an ASGI app on a free loopback port for as long as a context is open."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve_on_loopback(app: Any, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) once the server accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it a keep-alive answer written in two parts waits
    # ~40 ms for the client's delayed ACK (Nagle), which swamps every latency figure.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = _EmbeddedServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:
            await anyio.sleep(0.005)
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
    sock.close()


async def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 30.0) -> None:
    """Until something listens there. (A GET would not do: a stateless MCP server answers it with an endless stream.)"""
    with anyio.fail_after(timeout_s):
        while True:
            try:
                await (await anyio.connect_tcp(host, port)).aclose()
                return
            except OSError:
                await anyio.sleep(0.05)
