"""Two server processes on one PostgreSQL history, behind a round-robin balancer: like one server, for everyone."""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import httpx2
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client

from conftest import TOKEN
from helpers import structured, text_of
from http_servers import client_timeout, free_port
from images import make_image
from mcp import Client
from runcomfy_mcp.sandbox.balancer import RoundRobin
from runcomfy_mcp.sandbox.serving import wait_for_port
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")
LITE = "seedance_1_0_lite_image_to_video"
PHOTO = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
ARGS = {"prompt": "a cat", "first_frame_image_url": PHOTO}
BOB = "rc-bob-token-7d41c0"


@dataclass
class Replica:
    url: str
    process: anyio.abc.Process


@asynccontextmanager
async def replica(api_url: str, database_url: str, tmp_path: Path, name: str, **env: str) -> AsyncIterator[Replica]:
    """One `runcomfy-mcp --transport http` process on the shared database; callers bring their own tokens."""
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k != "RUNCOMFY_API_TOKEN"},
        "RUNCOMFY_BASE_URL": api_url,
        "RUNCOMFY_DATABASE_URL": database_url,
        "RUNCOMFY_OUTPUT_DIR": str(tmp_path / f"videos-{name}"),
        "RUNCOMFY_DATA_DIR": str(tmp_path / f"data-{name}"),
        **env,
    }
    command = [str(SCRIPT), "--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
    process = await anyio.open_process(command, env=environment, stdout=None, stderr=None)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        await wait_for_port(port, timeout_s=20)
        yield Replica(url, process)
    finally:
        if process.returncode is None:
            process.terminate()
            with anyio.fail_after(10):
                await process.wait()


def client(url: str, token: str, mode: str = "auto", transport: httpx2.AsyncBaseTransport | None = None) -> Client:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, transport=transport, timeout=client_timeout()
    )
    return Client(streamable_http_client(url, http_client=http), mode=mode)


@pytest.fixture
def two_tokens(simulator: Simulator) -> None:
    simulator.tokens.add(BOB)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_submit_on_one_wait_on_the_other_list_cancel_and_download_anywhere(
    api_url: str, simulator: Simulator, clock: ManualClock, database_url: str, tmp_path: Path, mode: str
) -> None:
    async with (
        replica(api_url, database_url, tmp_path, "a") as a,
        replica(api_url, database_url, tmp_path, "b") as b,
        client(a.url, TOKEN, mode) as on_a,
        client(b.url, TOKEN, mode) as on_b,
    ):
        first = structured(await on_a.call_tool(LITE, ARGS))["request_id"]
        second = structured(await on_a.call_tool(LITE, ARGS))["request_id"]
        cancelled = structured(await on_b.call_tool("cancel", {"request_id": second}))
        assert cancelled["outcome"] == "cancelled"
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        done = structured(await on_b.call_tool("wait_for_result", {"request_id": first, "timeout_s": 5}))
        assert done["status"] == "succeeded"
        for replica_client in (on_a, on_b):
            listed = {
                j["request_id"]: j["status"]
                for j in structured(await replica_client.call_tool("list_jobs", {}))["jobs"]
            }
            assert listed == {first: "succeeded", second: "cancelled"}
        saved = structured(await on_a.call_tool("get_result", {"request_id": first, "download": True}))
    assert saved["local_files"] == [] and any("Saved on the server as" in n for n in saved["notes"])
    assert (tmp_path / "videos-a" / f"{first}.mp4").stat().st_size > 0  # saved by replica A
    assert len(simulator.calls.submits) == 2


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_round_robin_balancer_sees_one_server(
    api_url: str, simulator: Simulator, clock: ManualClock, database_url: str, tmp_path: Path, mode: str
) -> None:
    async with (
        replica(api_url, database_url, tmp_path, "a") as a,
        replica(api_url, database_url, tmp_path, "b") as b,
    ):
        balancer = RoundRobin(a.url, b.url)
        async with client(a.url, TOKEN, mode, transport=balancer) as both:
            tools = (await both.list_tools()).tools
            job = structured(await both.call_tool(LITE, ARGS))["request_id"]
            clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
            status = structured(await both.call_tool("get_status", {"request_id": job}))
            result = structured(await both.call_tool("get_result", {"request_id": job}))
            jobs = structured(await both.call_tool("list_jobs", {}))["jobs"]
    assert len(tools) == 15 and status["status"] == "completed" and result["status"] == "succeeded"
    assert [j["request_id"] for j in jobs] == [job]
    assert len(set(balancer.sent)) == 2  # both replicas answered


async def test_a_replica_killed_mid_wait_loses_nothing(
    api_url: str, simulator: Simulator, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    async with (
        replica(api_url, database_url, tmp_path, "a") as a,
        replica(api_url, database_url, tmp_path, "b") as b,
        client(b.url, TOKEN) as on_b,
    ):
        async with client(a.url, TOKEN) as submitter:  # submitted on A, the replica that will die
            job = structured(await submitter.call_tool(LITE, ARGS))["request_id"]
        waiting = anyio.Event()

        async def wait_on_a() -> None:
            # The replica dies under the call: this client sees a broken connection, whatever its shape.
            with contextlib.suppress(Exception, BaseExceptionGroup):
                async with client(a.url, TOKEN) as on_a:
                    waiting.set()
                    await on_a.call_tool("wait_for_result", {"request_id": job, "timeout_s": 60})

        async with anyio.create_task_group() as group:
            group.start_soon(wait_on_a)
            await waiting.wait()
            await anyio.sleep(0.5)  # the wait is polling on A now
            a.process.kill()  # kill -9, mid-wait
            await a.process.wait()
            group.cancel_scope.cancel()
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        done = structured(await on_b.call_tool("wait_for_result", {"request_id": job, "timeout_s": 5}))
        jobs = structured(await on_b.call_tool("list_jobs", {}))["jobs"]
    assert done["status"] == "succeeded" and [j["request_id"] for j in jobs] == [job]
    assert len(simulator.calls.submits) == 1


async def test_two_callers_on_two_replicas_never_see_each_other(
    api_url: str, simulator: Simulator, database_url: str, tmp_path: Path, two_tokens: None
) -> None:
    async with (
        replica(api_url, database_url, tmp_path, "a") as a,
        replica(api_url, database_url, tmp_path, "b") as b,
        client(a.url, TOKEN) as alice,
        client(b.url, BOB) as bob,
    ):
        alices = structured(await alice.call_tool(LITE, ARGS))["request_id"]
        bobs_view = await bob.call_tool("get_status", {"request_id": alices})
        bobs_cancel = await bob.call_tool("cancel", {"request_id": alices})
        bobs_list = structured(await bob.call_tool("list_jobs", {}))["jobs"]
    assert (bobs_view.is_error and "not in your history" in text_of(bobs_view)) or "no job" in text_of(bobs_view)
    assert bobs_cancel.is_error and bobs_list == []
    assert simulator.jobs[alices].cancelled is False


async def test_concurrent_submits_through_both_replicas_respect_the_budget(
    api_url: str, simulator: Simulator, database_url: str, tmp_path: Path
) -> None:
    results: list[types.CallToolResult] = []
    budget = {"RUNCOMFY_BUDGET_USD": "0.45"}  # 5 jobs of $0.09
    async with (
        replica(api_url, database_url, tmp_path, "a", **budget) as a,
        replica(api_url, database_url, tmp_path, "b", **budget) as b,
        client(a.url, TOKEN) as on_a,
        client(b.url, TOKEN) as on_b,
        anyio.create_task_group() as group,
    ):

        async def submit(target: Client) -> None:
            results.append(await target.call_tool(LITE, ARGS))

        for i in range(20):
            group.start_soon(submit, on_a if i % 2 else on_b)
    assert len(results) == 20 and sum(not r.is_error for r in results) == 5
    assert len(simulator.calls.submits) == 5


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_consent_across_replicas(
    api_url: str, simulator: Simulator, database_url: str, tmp_path: Path, mode: str
) -> None:
    """2026-07-28 asks through InputRequiredResult, so the answer may reach the other replica; an older client
    cannot be called back by a stateless server and is told so. Either way nothing is sent without a yes."""
    asked: list[str] = []

    async def yes(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    confirm = {"RUNCOMFY_CONFIRM_ABOVE_USD": "0.05", "RUNCOMFY_CONSENT_KEY": "a-secret-the-replicas-share-" + "x" * 8}
    async with (
        replica(api_url, database_url, tmp_path, "a", **confirm) as a,
        replica(api_url, database_url, tmp_path, "b", **confirm) as b,
    ):
        balancer = RoundRobin(a.url, b.url)
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {TOKEN}"}, transport=balancer, timeout=client_timeout()
        )
        async with Client(streamable_http_client(a.url, http_client=http), mode=mode, elicitation_callback=yes) as c:
            result = await c.call_tool(LITE, ARGS)
    if mode == "auto":
        assert not result.is_error and len(asked) == 1 and len(simulator.calls.submits) == 1
    else:
        assert result.is_error and "stateless" in text_of(result) and len(simulator.calls.submits) == 0


@pytest.mark.parametrize("phase", ["queued", "generating"])
async def test_waits_on_two_replicas_poll_runcomfy_about_as_often_as_one(
    api_url: str, simulator: Simulator, clock: ManualClock, database_url: str, tmp_path: Path, phase: str
) -> None:
    """A job waited on through both replicas at once is asked after as if one wait followed it: each replica
    reuses the status the other fetched (shared through the history) instead of asking again. Queued, the job is
    asked at /status; generating, at /result (whose answer is shared the same way)."""
    pace = {"RUNCOMFY_POLL_INITIAL_S": "0.1", "RUNCOMFY_POLL_MAX_S": "0.25"}
    waited = {"request_id": "", "timeout_s": 2.5}

    def polls(job: str) -> int:
        asked = [f"/v1/requests/{job}/status", f"/v1/requests/{job}/result"]
        return sum(simulator.calls.count("GET", path) for path in asked)

    async with (
        replica(api_url, database_url, tmp_path, "a", **pace) as a,
        replica(api_url, database_url, tmp_path, "b", **pace) as b,
        client(a.url, TOKEN) as on_a,
        client(b.url, TOKEN) as on_b,
    ):
        alone, together = [structured(await on_a.call_tool(LITE, ARGS))["request_id"] for _ in range(2)]
        await on_b.call_tool("list_jobs", {})  # B's first call sets it up: after it, both waits start together
        if phase == "generating":
            clock.advance(QUEUE_SECONDS + 0.1)
        # The simulator's clock stands still from here: the jobs stay where they are, every wait runs to its timeout.
        assert structured(await on_a.call_tool("wait_for_result", waited | {"request_id": alone}))["timed_out"]
        async with anyio.create_task_group() as group:
            for target in (on_a, on_b):
                group.start_soon(target.call_tool, "wait_for_result", waited | {"request_id": together})
    assert polls(alone) >= 8  # the wait did poll: the comparison below means something
    assert polls(together) <= polls(alone) * 1.25 + 1, (polls(alone), polls(together))
    if phase == "generating":  # asked at /result after each wait's first look
        assert simulator.calls.count("GET", f"/v1/requests/{together}/result") >= polls(together) - 2


async def test_a_team_server_without_a_token_reads_the_catalog_with_its_callers_tokens(
    api_url: str, simulator: Simulator, database_url: str, tmp_path: Path, two_tokens: None
) -> None:
    """RunComfy wants a token on the catalog too. Replicas with none of their own read it with the token of a
    caller who needs it; the cache is shared and never records whose token filled it; a refused token is its
    caller's problem only."""
    mallory = "rc-mallory-revoked-0000"
    kling = "kling/kling-v2-1/pro/image-to-video"
    flux = {"model_id": "blackforestlabs/flux-2/flash/text-to-image", "input": {"prompt": "a kite"}}
    five_seconds = {"model_id": kling, "input": {"prompt": "x", "image_url": PHOTO, "duration": "5"}}
    async with (
        replica(api_url, database_url, tmp_path, "a") as a,
        replica(api_url, database_url, tmp_path, "b") as b,
        client(a.url, mallory) as mallory_on_a,
        client(a.url, TOKEN) as alice_on_a,
        client(b.url, BOB) as bob_on_b,
    ):
        refused = await mallory_on_a.call_tool("find_models", {"query": "kling image to video"})
        found = structured(await alice_on_a.call_tool("find_models", {"query": "kling image to video"}))
        described = structured(await bob_on_b.call_tool("describe_model", {"model_id": kling}))
        quote = await bob_on_b.call_tool("estimate_cost", five_seconds)
        ran = await alice_on_a.call_tool("run_model", flux)
        shared = await mallory_on_a.call_tool("describe_model", {"model_id": kling})  # fresh now: no token needed
        again = structured(await alice_on_a.call_tool("find_models", {"query": "wan"}))
    assert refused.is_error and "Authorization" in text_of(refused) and "RUNCOMFY_API_TOKEN" not in text_of(refused)
    assert found["source"] == "live" and found["models"][0]["model_id"] == kling and found["note"] is None
    assert described["runnable"] and described["base_price_usd"] == 0.09
    assert not quote.is_error and "$0.45" in text_of(quote), text_of(quote)  # priced from what bob's token read
    assert not ran.is_error, text_of(ran)
    assert not shared.is_error and structured(shared)["runnable"]
    assert again["source"] == "live" and again["models"][0]["model_id"].startswith("wan-ai/")
    listings = [p for m, p in simulator.calls.requests if m == "GET" and p == "/v1/models"]
    assert len(listings) == 3  # mallory's refused read, then one per replica; the rest came from each one's copy
    caches = [c for name in ("a", "b") for c in (tmp_path / f"data-{name}").rglob("catalog-*.json")]
    assert caches
    for cached in caches:
        text = cached.read_text()
        assert TOKEN not in text and BOB not in text and mallory not in text and "key:" not in text
