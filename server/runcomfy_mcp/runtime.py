"""Assembles one server's parts from its settings: the HTTP client, the core, the tool table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from runcomfy_mcp import __version__
from runcomfy_mcp.app import RunComfyTools
from runcomfy_mcp.client import RunComfyClient
from runcomfy_mcp.jobs import JobService
from runcomfy_mcp.redaction import Redactor
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.specs import load_specs


@dataclass
class Runtime:
    settings: Settings
    redactor: Redactor
    service: JobService
    tools: RunComfyTools


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    redactor = Redactor(settings.token_value())
    specs = load_specs(settings.tool_specs_dir)
    timeout = httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)
    async with httpx.AsyncClient(
        timeout=timeout,
        transport=transport,
        headers={"User-Agent": f"runcomfy-mcp/{__version__}"},
        follow_redirects=False,
    ) as http:
        client = RunComfyClient(http, base_url=settings.base_url, token=settings.token_value(), redactor=redactor)
        service = JobService(client, specs)
        yield Runtime(settings=settings, redactor=redactor, service=service, tools=RunComfyTools(service, redactor))
