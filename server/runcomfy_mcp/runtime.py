"""Assembles one server's parts from its settings: the HTTP client, the core, the tool table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import httpx

from runcomfy_mcp import __version__
from runcomfy_mcp.client import RunComfyClient
from runcomfy_mcp.downloads import Downloader
from runcomfy_mcp.inputs import InputPreparer
from runcomfy_mcp.jobs import JobService, PollSchedule
from runcomfy_mcp.lazy_http import LazyAsyncClient
from runcomfy_mcp.media import ImageLoader, MediaPolicy, Resolver, resolve_host
from runcomfy_mcp.redaction import Redactor
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.specs import load_specs
from runcomfy_mcp.store import JobStore
from runcomfy_mcp.tools import RunComfyTools


@dataclass
class Runtime:
    settings: Settings
    redactor: Redactor
    service: JobService
    tools: RunComfyTools


Serving = Literal["stdio", "http"]


def media_policy(settings: Settings, serving: Serving) -> MediaPolicy:
    """stdio serves the person at this machine; HTTP may serve strangers, so it reads nothing local."""
    if serving == "http":
        return MediaPolicy(local_files=False, fetch_private_urls=False, offline=settings.sandbox)
    return MediaPolicy(input_roots=settings.input_root_paths(), offline=settings.sandbox)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    serving: Serving = "stdio",
    transport: httpx.AsyncBaseTransport | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver = resolve_host,
    notice: str | None = None,
) -> AsyncIterator[Runtime]:
    """The server's parts; `transport`, `media_transport` and `resolver` are seams for tests."""
    redactor = Redactor(settings.token_value())
    specs = load_specs(settings.tool_specs_dir)
    timeout = httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)
    headers = {"User-Agent": f"runcomfy-mcp/{__version__}"}
    # Two clients: only the API one ever carries the token; the media one talks to arbitrary hosts.
    api_http = LazyAsyncClient(timeout=timeout, transport=transport, headers=headers, follow_redirects=False)
    media_http = LazyAsyncClient(timeout=timeout, transport=media_transport, headers=headers)
    try:
        retry = settings.retry_policy()
        client = RunComfyClient(
            api_http.as_client(),
            base_url=settings.base_url,
            token=settings.token_value(),
            redactor=redactor,
            retry=retry,
        )
        inputs = InputPreparer(ImageLoader(media_http.as_client(), media_policy(settings, serving), resolver))
        service = JobService(
            client,
            specs,
            inputs,
            store=JobStore(settings.data_dir.expanduser() / "jobs.sqlite3"),
            downloader=Downloader(media_http.as_client(), settings.output_dir, retry),
            schedule=PollSchedule(initial_s=settings.poll_initial_s, max_s=settings.poll_max_s),
        )
        tools = RunComfyTools(service, redactor, notice)
        yield Runtime(settings=settings, redactor=redactor, service=service, tools=tools)
    finally:
        await api_http.aclose()
        await media_http.aclose()
