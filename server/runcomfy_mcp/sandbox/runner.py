"""Sandbox mode: the simulator served on loopback inside the server's own process."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import SecretStr

from runcomfy_mcp.runtime import load_tool_specs
from runcomfy_mcp.sandbox.catalog import sandbox_catalog
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import SimulatedJob, Simulator
from runcomfy_mcp.settings import Settings

logger = logging.getLogger(__name__)

NOTICE = "SANDBOX: simulated result. No real model ran, nothing left this machine and nothing was charged."


def _video(job: SimulatedJob) -> bytes:
    from runcomfy_mcp.sandbox.video import video_for_job

    return video_for_job(job.arguments)


@asynccontextmanager
async def sandboxed(settings: Settings) -> AsyncIterator[Settings]:
    """Settings pointing at a simulator that runs for as long as the context is open."""
    token = settings.token_value() or f"sandbox-{secrets.token_hex(8)}"
    simulator = Simulator(
        token=token,
        catalog=sandbox_catalog(extra_specs=load_tool_specs(settings)),
        time_scale=settings.sandbox_time_scale,
        video_maker=_video,
    )
    async with serve_on_loopback(simulator.app()) as url:
        simulator.base_url = url
        logger.warning("SANDBOX MODE: the RunComfy API is simulated at %s; results are not real", url)
        yield settings.model_copy(update={"base_url": url, "api_token": SecretStr(token)})
