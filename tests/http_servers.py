"""The server as clients start it: its console script over stdio or streamable HTTP, and an HTTP MCP client."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client

from conftest import TOKEN
from mcp import Client
from runcomfy_mcp.sandbox.serving import wait_for_port

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")


def server_env(api_url: str, **extra: str) -> dict[str, str]:
    """The test's own environment (isolated folders, fast polls) plus the API to talk to."""
    return {**os.environ, "RUNCOMFY_API_TOKEN": TOKEN, "RUNCOMFY_BASE_URL": api_url, **extra}


# Each test worker (pytest-xdist's gw0, gw1, ...) takes ports from a block of its own, below the kernel's ephemeral
# range: a port found by binding port 0 is free only until it is closed, and another worker's server could take it
# before ours binds it (a request then reaches the wrong server).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_BLOCK = 1_000
_FIRST_PORT = 20_000 + _BLOCK * (int(_WORKER[2:]) + 1 if _WORKER.startswith("gw") else 0)
_PORTS = itertools.cycle(range(_FIRST_PORT, _FIRST_PORT + _BLOCK))


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's own block."""
    for _ in range(_BLOCK):
        port = next(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or still closing: the next one
            return port
    raise RuntimeError(f"no free port in {_FIRST_PORT}-{_FIRST_PORT + _BLOCK - 1}")


@asynccontextmanager
async def http_server(
    api_url: str,
    *flags: str,
    token: str | None = TOKEN,
    env: Mapping[str, str] | None = None,
    log: list[str] | None = None,
    host: str = "127.0.0.1",
    open_files: int | None = None,
) -> AsyncIterator[str]:
    """The console script serving streamable HTTP on a free port; yields the /mcp URL once it answers. Given a
    `log` list, the server's log (stderr) is read into it once the server has stopped; given `open_files`, it starts
    with that soft limit of open files (as many systems set it: 1,024)."""
    port = free_port()
    command = [str(SCRIPT), "--transport", "http", "--host", host, "--port", str(port), *flags]
    if open_files is not None:
        command = ["bash", "-c", f'ulimit -S -n {open_files} && exec "$@"', "--", *command]
    environment = {**server_env(api_url), **(env or {})}
    if token is None:
        del environment["RUNCOMFY_API_TOKEN"]
    stderr = subprocess.PIPE if log is not None else None
    process = await anyio.open_process(command, env=environment, stdout=None, stderr=stderr)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        await wait_for_port(port, timeout_s=20)
        yield url
    finally:
        process.terminate()
        with anyio.fail_after(10):
            if log is not None and process.stderr is not None:
                log += (b"".join([chunk async for chunk in process.stderr])).decode(errors="replace").splitlines()
            await process.wait()


def client_timeout(seconds: float = 5.0) -> httpx2.Timeout:
    """A test client's timeouts: `seconds` for everything but reading, which waits longer. A wait_for_result call's
    stream is silent between two polls (up to 10 s, the schedule's ceiling) unless the client asks for progress,
    and a machine running the suite in parallel can add seconds."""
    return httpx2.Timeout(seconds, read=max(seconds, 30.0))


def http_client(url: str, token: str | None, mode: str = "auto", timeout_s: float = 5.0) -> Client:
    """An MCP client over streamable HTTP that sends `token` as its bearer credential."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=client_timeout(timeout_s))
    return Client(streamable_http_client(url, http_client=http), mode=mode)
