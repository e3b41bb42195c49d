"""The sandbox keeps to itself and keeps its word: its jobs, spending and specs never reach a real server's, and a
job outlives the process that submitted it (clients start a new server process per session)."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from conftest import TOKEN
from helpers import structured, text_of
from http_servers import free_port, http_client
from images import make_image
from mcp import Client, StdioServerParameters
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.mcp.callers import CallerIdentity
from runcomfy_mcp.runtime import Serving, open_runtime
from runcomfy_mcp.sandbox.runner import NOTICE, sandboxed
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

SCRIPT = str(Path(sys.executable).with_name("runcomfy-mcp"))
LITE = "seedance_1_0_lite_image_to_video"
PHOTO = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
ARGS = {"prompt": "a cat", "first_frame_image_url": PHOTO}
FAST = 0.01  # a job ends 0.09 s after it is submitted
SLOW = 100.0  # a job waits 300 s in the queue: still cancellable from the next process
ALICE = "alice-sandbox-token-0123456789abcdef"
BOB = "bob-sandbox-token-0123456789abcdef-b"


@asynccontextmanager
async def sandbox_process(
    time_scale: float = FAST, serving: Serving = "stdio", **settings: Any
) -> AsyncIterator[Client]:
    """One server process's worth of sandbox: a new simulator and a new runtime on the same folders."""
    base = Settings(sandbox=True, sandbox_time_scale=time_scale, **settings)
    async with (
        sandboxed(base) as sandbox,
        open_runtime(sandbox, serving=serving, notice=NOTICE) as runtime,
        Client(build_server(runtime.tools, CallerIdentity(http=serving == "http", shared_token=True))) as client,
    ):
        yield client


@asynccontextmanager
async def real_server(api_url: str, **settings: Any) -> AsyncIterator[Client]:
    async with (
        open_runtime(Settings(api_token=TOKEN, base_url=api_url, **settings)) as runtime,
        Client(build_server(runtime.tools)) as client,
    ):
        yield client


@pytest.mark.parametrize("serving", ["stdio", "http"])
async def test_sandbox_jobs_never_reach_the_real_history_ledger_or_limits(api_url: str, serving: Serving) -> None:
    async with sandbox_process(SLOW, serving) as sandbox:
        job = await sandbox.call_tool(LITE, ARGS)
        assert not job.is_error, text_of(job)
        sandbox_jobs = structured(await sandbox.call_tool("list_jobs", {}))["jobs"]
        assert [j["request_id"] for j in sandbox_jobs] == [structured(job)["request_id"]]

    async with real_server(api_url, max_active_jobs=1, budget_usd=0.5) as real:
        assert structured(await real.call_tool("list_jobs", {}))["jobs"] == []
        account = structured(await real.call_tool("get_account", {}))
        assert (account["spent_usd"], account["jobs"], account["limits"]["active_jobs"]) == (0, 0, 0), account
        submitted = await real.call_tool(LITE, ARGS)  # the unfinished $0.45 sandbox job holds no slot, no budget
        assert not submitted.is_error, text_of(submitted)


async def test_a_shared_database_never_holds_a_sandbox_job(api_url: str, database_url: str) -> None:
    async with sandbox_process(SLOW, "http", database_url=database_url) as sandbox:
        simulated = structured(await sandbox.call_tool(LITE, ARGS))["request_id"]
        assert [j["request_id"] for j in structured(await sandbox.call_tool("list_jobs", {}))["jobs"]] == [simulated]
    async with real_server(api_url, database_url=database_url, max_active_jobs=1) as real:
        assert structured(await real.call_tool("list_jobs", {}))["jobs"] == []
        real_job = await real.call_tool(LITE, ARGS)
        assert not real_job.is_error, text_of(real_job)
    with psycopg.connect(database_url) as db:
        request_ids = [row[0] for row in db.execute("SELECT request_id FROM jobs")]
    assert request_ids == [structured(real_job)["request_id"]]


async def test_a_sandbox_job_is_followed_cancelled_and_downloaded_from_the_next_process(tmp_path: Path) -> None:
    async with sandbox_process(FAST) as first:
        quick = structured(await first.call_tool(LITE, ARGS))["request_id"]
    async with sandbox_process(SLOW) as first_again:
        queued = structured(await first_again.call_tool(LITE, ARGS))["request_id"]

    async with sandbox_process() as second:
        with anyio.fail_after(30):
            done = await second.call_tool("wait_for_result", {"request_id": quick, "timeout_s": 20, "download": True})
        assert not done.is_error and structured(done)["status"] == "succeeded", text_of(done)
        saved = Path(structured(done)["local_files"][0])
        assert saved.read_bytes()[4:8] == b"ftyp"  # an MP4, made by this process from the job's own arguments
        status = structured(await second.call_tool("get_status", {"request_id": queued}))
        assert status["status"] == "in_queue" and status["queue_position"] == 1
        cancelled = await second.call_tool("cancel", {"request_id": queued})
        assert structured(cancelled)["outcome"] == "cancelled", text_of(cancelled)
        balance = structured(await second.call_tool("get_account", {}))["balance_usd"]

    async with sandbox_process() as third:
        assert structured(await third.call_tool("get_status", {"request_id": queued}))["status"] == "cancelled"
        listed = {j["request_id"]: j["status"] for j in structured(await third.call_tool("list_jobs", {}))["jobs"]}
        assert listed == {quick: "succeeded", queued: "cancelled"}
        account = structured(await third.call_tool("get_account", {}))
        assert account["balance_usd"] == balance < 25  # the simulated wallet is kept too, not filled again


async def test_the_next_stdio_process_finishes_the_job_of_the_last(tmp_path: Path) -> None:
    """As the Inspector's CLI runs it: a new server process per call."""
    env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_API_TOKEN"}
    env["RUNCOMFY_SANDBOX_TIME_SCALE"] = str(FAST)
    params = StdioServerParameters(command=SCRIPT, args=["--sandbox"], env=env)
    async with Client(params) as first:
        request_id = structured(await first.call_tool(LITE, ARGS))["request_id"]
    async with Client(params) as second:
        with anyio.fail_after(30):
            done = await second.call_tool("wait_for_result", {"request_id": request_id, "timeout_s": 20})
    assert not done.is_error and structured(done)["status"] == "succeeded", text_of(done)
    assert "no such request" not in text_of(done)


@asynccontextmanager
async def sandbox_http_server() -> AsyncIterator[str]:
    """`runcomfy-mcp --sandbox --transport http` as a person would start it: no token of its own."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_API_TOKEN"}
    env["RUNCOMFY_SANDBOX_TIME_SCALE"] = str(FAST)
    command = [SCRIPT, "--sandbox", "--transport", "http", "--port", str(port)]
    process = await anyio.open_process(command, env=env, stdout=None, stderr=None)
    try:
        from runcomfy_mcp.sandbox.serving import wait_for_port

        await wait_for_port(port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()


async def test_sandbox_over_http_takes_any_token_or_none_and_keeps_each_callers_history() -> None:
    async with sandbox_http_server() as url:
        jobs: dict[str | None, str] = {}
        for token in (ALICE, BOB, None):
            async with http_client(url, token) as caller:
                submitted = await caller.call_tool(LITE, ARGS)
                assert not submitted.is_error, text_of(submitted)
                jobs[token] = structured(submitted)["request_id"]
        for token in (ALICE, BOB, None):
            async with http_client(url, token) as caller:
                listed = [j["request_id"] for j in structured(await caller.call_tool("list_jobs", {}))["jobs"]]
                assert listed == [jobs[token]]
                with anyio.fail_after(30):
                    done = await caller.call_tool("wait_for_result", {"request_id": jobs[token], "timeout_s": 20})
                assert structured(done)["status"] == "succeeded", text_of(done)
        async with http_client(url, BOB) as bob:
            theirs = await bob.call_tool("get_result", {"request_id": jobs[ALICE]})
            assert theirs.is_error and "no job" in text_of(theirs)
    async with sandbox_http_server() as url, http_client(url, ALICE) as alice:  # the server restarted
        again = await alice.call_tool("get_result", {"request_id": jobs[ALICE]})
        assert structured(again)["status"] == "succeeded", text_of(again)
