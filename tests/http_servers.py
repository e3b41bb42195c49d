"""The server as clients start it: its console script over stdio or streamable HTTP, and an HTTP MCP client."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
from mcp.client.streamable_http import streamable_http_client

from conftest import TOKEN
from mcp import Client

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")


def server_env(api_url: str, **extra: str) -> dict[str, str]:
    """The test's own environment (isolated folders, fast polls) plus the API to talk to."""
    return {**os.environ, "RUNCOMFY_API_TOKEN": TOKEN, "RUNCOMFY_BASE_URL": api_url, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def http_server(api_url: str, *flags: str, token: str | None = TOKEN) -> AsyncIterator[str]:
    """The console script serving streamable HTTP on a free port; yields the /mcp URL once it answers."""
    port = free_port()
    command = [str(SCRIPT), "--transport", "http", "--host", "127.0.0.1", "--port", str(port), *flags]
    env = server_env(api_url)
    if token is None:
        del env["RUNCOMFY_API_TOKEN"]
    process = await anyio.open_process(command, env=env, stdout=None, stderr=None)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with anyio.fail_after(20):
            async with httpx.AsyncClient() as http:
                while True:
                    try:
                        await http.get(url)
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()


def http_client(url: str, token: str | None, mode: str = "auto") -> Client:
    """An MCP client over streamable HTTP that sends `token` as its bearer credential."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers)), mode=mode)
