"""The README's standalone helpers, run as a person would: the simulator and the throwaway PostgreSQL."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import psycopg
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def started(*module_and_flags: str) -> AsyncIterator[tuple[Process, str]]:
    """The module as a process, and the first line it prints (its URL)."""
    process = await anyio.open_process([sys.executable, "-m", *module_and_flags])
    try:
        assert process.stdout is not None
        with anyio.fail_after(60):
            first = ""
            async for text in TextReceiveStream(process.stdout):
                first += text
                if "\n" in first:
                    break
        yield process, first.split("\n", 1)[0]
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.fail_after(30):
            await process.wait()


async def test_the_standalone_simulator_takes_any_token_unless_told_which() -> None:
    model = "/v1/models/bytedance/dreamina-3-0/image-to-video"
    async with started("runcomfy_mcp.sandbox", "--time-scale", "0.01") as (_, url), httpx.AsyncClient() as http:
        made_up = await http.post(url + model, json={"prompt": "x"}, headers={"Authorization": "Bearer made-up"})
        assert made_up.status_code == 200 and made_up.json()["request_id"].startswith("sim-")
        assert (await http.post(url + model, json={"prompt": "x"})).status_code == 401  # but a token is needed
    async with started("runcomfy_mcp.sandbox", "--token", "mine") as (_, url), httpx.AsyncClient() as http:
        other = await http.post(url + model, json={}, headers={"Authorization": "Bearer made-up"})
        assert other.status_code == 401


async def test_the_throwaway_postgresql_serves_a_fresh_database_until_stopped() -> None:
    async with started("runcomfy_mcp.sandbox.postgres") as (process, url):
        with psycopg.connect(url) as db:
            assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
            row = db.execute("SHOW data_directory").fetchone()
        process.terminate()
        with anyio.fail_after(30):
            assert await process.wait() == 0
    assert row is not None and not os.path.exists(row[0])  # stopped and removed
