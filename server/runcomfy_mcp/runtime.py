"""Assembles one server's parts from its settings: the tool table at once, the core on first use.

A stdio server is started by the chat client at every launch, and most launches only list tools.
So the core (httpx, SQLite, the image parsers, JSON Schema) is imported and built by the first
tool call, not at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from runcomfy_mcp import __version__
from runcomfy_mcp.core.specs import ToolSpec, load_specs
from runcomfy_mcp.mcp.tools import RunComfyTools
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.upstream.redaction import Redactor

if TYPE_CHECKING:
    import httpcore
    import httpx

    from runcomfy_mcp.core.jobs import JobService
    from runcomfy_mcp.media.guarded_http import Resolver
    from runcomfy_mcp.media.sources import MediaPolicy


@dataclass
class Runtime:
    settings: Settings
    redactor: Redactor
    tools: RunComfyTools


Serving = Literal["stdio", "http"]


def media_policy(settings: Settings, serving: Serving) -> MediaPolicy:
    """stdio serves the person at this machine; HTTP may serve strangers, so it reads nothing local."""
    from runcomfy_mcp.media.sources import MediaPolicy

    if serving == "http":
        return MediaPolicy(local_files=False, fetch_private_urls=False, offline=settings.sandbox)
    return MediaPolicy(input_roots=settings.input_root_paths(), offline=settings.sandbox)


class Core:
    """Builds the JobService, its HTTP clients and its store the first time a tool needs them."""

    def __init__(
        self,
        settings: Settings,
        specs: Sequence[ToolSpec],
        redactor: Redactor,
        serving: Serving,
        transport: httpx.AsyncBaseTransport | None,
        media_transport: httpx.AsyncBaseTransport | None,
        resolver: Resolver | None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._settings = settings
        self._specs = specs
        self._redactor = redactor
        self._serving = serving
        self._transport = transport
        self._media_transport = media_transport
        self._resolver = resolver
        self._network = network
        self._service: JobService | None = None
        self._clients: list[httpx.AsyncClient] = []

    def __call__(self) -> JobService:
        if self._service is None:
            self._service = self._build()
        return self._service

    def _build(self) -> JobService:
        import httpx

        from runcomfy_mcp.core.jobs import JobService, PollSchedule
        from runcomfy_mcp.core.media_rules import MIB
        from runcomfy_mcp.media.downloads import Downloader, DownloadLimits, OutputHosts
        from runcomfy_mcp.media.guarded_http import FetchSlots, GuardedNetwork, GuardedTransport, resolve_host
        from runcomfy_mcp.media.inputs import InputPreparer
        from runcomfy_mcp.media.sources import MediaLoader
        from runcomfy_mcp.store.sqlite import JobStore
        from runcomfy_mcp.upstream.client import API_CONNECTION_LIMITS, RunComfyClient

        settings = self._settings
        shared = self._serving == "http"
        timeout = httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)
        headers = {"User-Agent": f"runcomfy-mcp/{__version__}"}
        resolver = self._resolver or resolve_host
        api_host = urlsplit(settings.base_url).hostname or ""

        def guarded_client(limits: httpx.Limits, trusted_hosts: tuple[str, ...] = ()) -> httpx.AsyncClient:
            transport = self._media_transport
            if transport is None:
                network = GuardedNetwork(
                    resolver, allow_private=not shared, trusted_hosts=trusted_hosts, inner=self._network
                )
                transport = GuardedTransport(network, limits)
            # trust_env off when shared: a proxy would resolve names where the address check cannot see.
            return httpx.AsyncClient(timeout=timeout, transport=transport, headers=headers, trust_env=not shared)

        # Three clients, three pools: only the API one carries the token, and strangers' slow image hosts
        # can hold neither the API's connections nor the downloads'. Media fetches are counted by FetchSlots,
        # so their pool needs no queue of its own (a queue is what let 100 slow hosts starve everyone).
        api_http = httpx.AsyncClient(
            timeout=timeout,
            transport=self._transport,
            limits=API_CONNECTION_LIMITS,
            headers=headers,
            follow_redirects=False,
        )
        media_http = guarded_client(
            httpx.Limits(max_connections=settings.max_fetches + 8, max_keepalive_connections=16)
        )
        download_http = guarded_client(httpx.Limits(max_connections=64, max_keepalive_connections=8), (api_host,))
        self._clients = [api_http, media_http, download_http]
        retry = settings.retry_policy()
        client = RunComfyClient(
            api_http,
            base_url=settings.base_url,
            token=settings.token_value(),
            redactor=self._redactor,
            retry=retry,
        )
        loader = MediaLoader(
            media_http,
            media_policy(settings, self._serving),
            resolver,
            deadline_s=settings.fetch_timeout_s,
            slots=FetchSlots(per_caller=settings.max_fetches_per_caller, total=settings.max_fetches),
        )
        downloader = Downloader(
            download_http,
            settings.output_dir,
            retry,
            limits=DownloadLimits(int(settings.max_download_mb * MIB), settings.download_timeout_s),
            hosts=OutputHosts.shared(settings.base_url, settings.output_host_patterns()) if shared else None,
            reveal_paths=not shared,
        )
        return JobService(
            client,
            self._specs,
            InputPreparer(loader),
            store=JobStore(settings.data_dir.expanduser() / "jobs.sqlite3"),
            downloader=downloader,
            schedule=PollSchedule(initial_s=settings.poll_initial_s, max_s=settings.poll_max_s),
        )

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()
        if self._service is not None:
            self._service.store.close()


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    serving: Serving = "stdio",
    transport: httpx.AsyncBaseTransport | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    network: httpcore.AsyncNetworkBackend | None = None,
    notice: str | None = None,
) -> AsyncIterator[Runtime]:
    """The server's parts. Seams for tests: `transport` (the API), `media_transport` (replaces the guarded
    media and download transports), `resolver` (DNS) and `network` (the sockets under the guard)."""
    redactor = Redactor(settings.token_value())
    specs = load_specs(settings.tool_specs_dir)
    core = Core(settings, specs, redactor, serving, transport, media_transport, resolver, network)
    try:
        yield Runtime(settings=settings, redactor=redactor, tools=RunComfyTools(specs, core, redactor, notice))
    finally:
        await core.aclose()
