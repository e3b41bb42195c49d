from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from images import FakeImageHost, fake_resolver
from mcp import Client
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import Serving, open_runtime
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import ManualClock, SimulatedJob, Simulator
from runcomfy_mcp.settings import Settings

TOKEN = "rc-test-token-5f2a9c1e7b"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see a developer's own RunComfy settings, history or downloads folder."""
    for name in list(os.environ):
        if name.startswith("RUNCOMFY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNCOMFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the user's own spec folder
    monkeypatch.setenv("RUNCOMFY_OUTPUT_DIR", str(tmp_path / "videos"))
    monkeypatch.setenv("RUNCOMFY_POLL_INITIAL_S", "0.01")
    monkeypatch.setenv("RUNCOMFY_POLL_MAX_S", "0.05")
    monkeypatch.setenv("RUNCOMFY_INPUT_ROOTS", str(tmp_path))
    monkeypatch.setenv("RUNCOMFY_RETRY_WAIT_INITIAL_S", "0.001")
    monkeypatch.setenv("RUNCOMFY_RETRY_WAIT_MAX_S", "0.01")
    monkeypatch.setenv("RUNCOMFY_RETRY_AFTER_MAX_S", "0.01")


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common umask, under which new files are readable by all: what keeps a file private is then the code's."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def fake_video(job: SimulatedJob) -> bytes:
    """Two megabytes that differ per job, so a download can be checked byte for byte."""
    seed = job.request_id.encode()
    return (seed * (2 * 1024 * 1024 // len(seed) + 1))[: 2 * 1024 * 1024]


@pytest.fixture
def simulator(clock: ManualClock) -> Simulator:
    return Simulator(token=TOKEN, clock=clock, video_maker=fake_video)


@pytest.fixture
async def api_url(simulator: Simulator) -> AsyncIterator[str]:
    async with serve_on_loopback(simulator.app()) as url:
        simulator.base_url = url
        yield url


def real_video(job: SimulatedJob) -> bytes:
    from runcomfy_mcp.sandbox.video import video_for_job

    return video_for_job(job.arguments)


@pytest.fixture
async def video_api(clock: ManualClock) -> AsyncIterator[tuple[str, Simulator]]:
    """A loopback simulator whose jobs make real, decodable videos (for previews and films): its URL, and itself."""
    simulator = Simulator(token=TOKEN, clock=clock, video_maker=real_video)
    async with serve_on_loopback(simulator.app()) as url:
        simulator.base_url = url
        yield url, simulator


ClientFactory = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol generations: the current per-request era and the legacy initialize handshake."""
    return str(request.param)


@pytest.fixture
def image_host() -> FakeImageHost:
    return FakeImageHost()


@pytest.fixture
def connect(mode: str, image_host: FakeImageHost) -> ClientFactory:
    """Open an MCP client on a fresh server built from `settings` (and optionally a mock API transport).

    Image URLs are fetched from the fake public image host, never from the network.
    """

    @asynccontextmanager
    async def open_client(
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        serving: Serving = "stdio",
        **client_kwargs: Any,
    ) -> AsyncIterator[Client]:
        async with (
            open_runtime(
                settings,
                transport=transport,
                serving=serving,
                media_transport=image_host.transport(),
                resolver=fake_resolver,
            ) as runtime,
            Client(build_server(runtime.tools), mode=mode, **client_kwargs) as client,
        ):
            yield client

    return open_client


@pytest.fixture
async def client(connect: ClientFactory, api_url: str) -> AsyncIterator[Client]:
    """A client on a server whose API is the loopback simulator."""
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as c:
        yield c


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One real PostgreSQL server for the whole run (started on first use)."""
    from runcomfy_mcp.sandbox.postgres import postgres_server as start

    with start() as url:
        yield url


@pytest.fixture
def database_url(postgres_server: str) -> str:
    """A fresh database of its own for each test."""
    from runcomfy_mcp.sandbox.postgres import fresh_database

    return fresh_database(postgres_server)
