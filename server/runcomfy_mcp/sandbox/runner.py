"""Sandbox mode: the simulator served on loopback inside the server's own process.

Everything the sandbox makes stays in the sandbox's own folders (`Settings.data_folder`, `specs_dir`): its
history and ledger, its catalog cache, its spec files, and the simulator's jobs and balance, so that a job
outlives the process that submitted it and never shows in, or counts against, a real account.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from pydantic import SecretStr

from runcomfy_mcp.runtime import load_tool_specs
from runcomfy_mcp.sandbox.catalog import sandbox_catalog
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import OPENING_BALANCE_USD, SimulatedJob, Simulator
from runcomfy_mcp.sandbox.state import SimulatorState
from runcomfy_mcp.settings import Settings

logger = logging.getLogger(__name__)

NOTICE = "SANDBOX: simulated result. No real model ran, nothing left this machine and nothing was charged."


def _video(job: SimulatedJob) -> bytes:
    from runcomfy_mcp.sandbox.video import video_for_job

    return video_for_job(job.arguments)


@asynccontextmanager
async def sandboxed(settings: Settings) -> AsyncIterator[Settings]:
    """Settings pointing at a simulator that runs for as long as the context is open, with the sandbox's own
    folders. The simulator accepts any bearer token, so HTTP callers bring whichever they like (or none)."""
    settings = settings.model_copy(update={"sandbox": True})
    folder = settings.data_folder()
    state = await anyio.to_thread.run_sync(
        functools.partial(SimulatorState, folder / "simulator.sqlite3", opening_balance_usd=OPENING_BALANCE_USD)
    )
    simulator = Simulator(
        token=None,
        catalog=sandbox_catalog(extra_specs=load_tool_specs(settings)),
        time_scale=settings.sandbox_time_scale,
        video_maker=_video,
        state=state,
    )
    update: dict[str, object] = {}
    if settings.auth == "oauth" and not settings.oauth_keys():
        from runcomfy_mcp.core.sealing import new_key

        update["oauth_key"] = SecretStr(new_key())  # for this run only: its grants end with it
    async with serve_on_loopback(simulator.app()) as url:
        simulator.base_url = url
        logger.warning("SANDBOX MODE: the RunComfy API is simulated at %s; results are not real", url)
        logger.info("sandbox: its history, spending and jobs are kept in %s, apart from the real ones", folder)
        if settings.database_url is not None:
            logger.info("sandbox: RUNCOMFY_DATABASE_URL is not used; a shared database never holds simulated jobs")
        # The sandbox's token is its own: a real one is never sent, even to loopback. Reading the catalog from
        # loopback costs nothing, so it is read afresh (TTL 0): a new version's models show at once.
        # The consent page's token check reaches the simulator too, which takes any token: the whole OAuth flow
        # runs offline.
        yield settings.model_copy(
            update={
                **update,
                "base_url": url,
                "api_token": SecretStr(f"sandbox-{secrets.token_hex(8)}"),
                "catalog_ttl_s": 0.0,
            }
        )
