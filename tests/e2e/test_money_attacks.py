"""Attacks on the money, through the server against the simulator, on both history backends: hostile numbers, a
submit that fails before it leaves, the database going away mid-submit, and what the ledger counts."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client
from starlette.responses import JSONResponse

from conftest import TOKEN
from faults import FaultyStore
from helpers import structured, text_of
from http_servers import http_server
from images import make_image
from mcp import Client
from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.runtime import Runtime, open_runtime
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"  # $0.018 per second, 5 s by default: $0.09
PHOTO = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
ARGS = {"prompt": "a cat", "first_frame_image_url": PHOTO}
CLIP = "acme/clip-1/text-to-video"  # $0.1 per second; its duration is a decimal number with no minimum
ALICE, BOB = Caller.with_token(TOKEN), Caller.with_token("rc-bob-token-55e1a0c2")


def add_clip(simulator: Simulator) -> None:
    simulator.catalog[CLIP] = {
        "model_id": CLIP,
        "display_name": "Clip 1",
        "description": "Makes a short clip from a prompt.",
        "categories": ["text-to-video"],
        "base_price_usd": 0.1,
        "price_unit": "second",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string"},
                "duration": {"type": "number", "maximum": 10, "default": 5, "description": "Seconds."},
            },
        },
    }


@pytest.fixture(params=["sqlite", "postgres"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("database_url")}
    return {"data_dir": tmp_path / "history"}


async def no_progress(progress: float, message: str) -> None:
    return None


@asynccontextmanager
async def server(api_url: str, history: dict[str, Any], **limits: Any) -> AsyncIterator[Runtime]:
    settings = Settings(api_token=TOKEN, base_url=api_url, **history, **limits)
    async with open_runtime(settings, serving="http") as runtime:
        yield runtime


async def call(runtime: Runtime, tool: str, arguments: dict[str, Any], caller: Caller = ALICE) -> types.CallToolResult:
    return await runtime.tools.call(tool, arguments, no_progress, caller)


def posts(simulator: Simulator) -> int:
    return len(simulator.calls.submits)


# ---------------------------------------------------------------- 1. non-finite and negative numbers


@pytest.mark.parametrize("hostile", ["nan", "NaN", "-inf", "-Infinity", "1e999", -5])
async def test_a_length_that_is_not_a_length_is_refused_and_the_budget_holds(
    api_url: str, simulator: Simulator, history: dict[str, Any], hostile: object
) -> None:
    """NaN passes `maximum` and every limit after it; −inf makes the spent total −inf. Neither may pass."""
    add_clip(simulator)
    async with server(api_url, history, budget_usd=1.0) as runtime:
        attack = await call(runtime, "run_model", {"model_id": CLIP, "input": {"prompt": "x", "duration": hostile}})
        assert attack.is_error and "duration: " in text_of(attack) and "internal error" not in text_of(attack)
        assert posts(simulator) == 0
        assert structured(await call(runtime, "list_jobs", {}))["jobs"] == []  # no reservation left behind
        results = [await call(runtime, "run_model", {"model_id": CLIP, "input": {"prompt": "x"}}) for _ in range(3)]
        account = structured(await call(runtime, "get_account", {}))
    assert [r.is_error for r in results] == [False, False, True]  # $0.50 each, $1 budget
    assert "RUNCOMFY_BUDGET_USD" in text_of(results[2]) and posts(simulator) == 2
    assert account["spent_usd"] == 1.0


async def test_a_bare_nan_in_the_json_is_refused_with_the_field_named(
    api_url: str, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that writes NaN (not valid JSON, but Python's parser takes it) into a tool call over HTTP."""
    add_clip(simulator)
    monkeypatch.setenv("RUNCOMFY_BUDGET_USD", "1")

    class Hostile(httpx2.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            body = request.content
            if b"12345.5" in body:
                body = body.replace(b"12345.5", b"NaN")
                request = httpx2.Request(request.method, request.url, headers=request.headers, content=body)
                request.headers["content-length"] = str(len(body))
            return await self.inner.handle_async_request(request)

    async with http_server(api_url) as url:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, transport=Hostile())
        async with Client(streamable_http_client(url, http_client=http)) as client:
            attack = await client.call_tool(
                "run_model", {"model_id": CLIP, "input": {"prompt": "x", "duration": 12345.5}}
            )
            assert attack.is_error and "duration: NaN is not a finite number" in text_of(attack), text_of(attack)
            ok = await client.call_tool("run_model", {"model_id": CLIP, "input": {"prompt": "x"}})
            assert not ok.is_error, text_of(ok)
    assert posts(simulator) == 1


async def test_a_reservation_is_released_when_the_submit_fails_before_it_leaves(
    api_url: str, simulator: Simulator, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with server(api_url, history, max_active_jobs=1) as runtime:
        client = runtime.tools.services.client()
        build = client._http.build_request

        def cannot_encode(method: str, *args: Any, **kwargs: Any) -> Any:
            if method == "POST":  # the submit's body, as httpx refuses a NaN
                raise ValueError("Out of range float values are not JSON compliant")
            return build(method, *args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(client._http, "build_request", cannot_encode)
            failed = await call(runtime, LITE, ARGS)
        assert failed.is_error and "Nothing was sent" in text_of(failed) and "internal error" not in text_of(failed)
        assert structured(await call(runtime, "list_jobs", {}))["jobs"] == []
        assert not (await call(runtime, LITE, ARGS)).is_error  # the limit of one unfinished job is not held
    assert posts(simulator) == 1


# ---------------------------------------------------------------- 3. unknown costs


@pytest.mark.parametrize("limit", [{"max_job_usd": 5.0}, {"budget_usd": 5.0}])
async def test_any_spending_limit_refuses_a_job_of_unknown_cost(
    api_url: str, simulator: Simulator, tmp_path: Path, limit: dict[str, float]
) -> None:
    simulator.catalog["minimax/speech-2-6/hd/text-to-speech"]["price_unit"] = "megapixel"
    run = {"model_id": "minimax/speech-2-6/hd/text-to-speech", "input": {"text": "hello"}}
    async with server(api_url, {"data_dir": tmp_path / "h"}, **limit) as runtime:
        refused = await call(runtime, "run_model", run)
    assert refused.is_error and "RUNCOMFY_ALLOW_UNPRICED" in text_of(refused) and posts(simulator) == 0
    named = "RUNCOMFY_MAX_JOB_USD" if "max_job_usd" in limit else "RUNCOMFY_BUDGET_USD"
    assert named in text_of(refused)
    async with server(api_url, {"data_dir": tmp_path / "h"}, **limit, allow_unpriced=True) as runtime:
        assert not (await call(runtime, "run_model", run)).is_error
    assert posts(simulator) == 1


# ---------------------------------------------------------------- 11. the database goes away mid-submit


async def test_a_paid_job_is_not_lost_when_the_database_goes_away_mid_submit(
    api_url: str, simulator: Simulator, clock: ManualClock, history: dict[str, Any]
) -> None:
    async with server(api_url, history, max_active_jobs=1) as runtime:
        jobs = runtime.tools.services.jobs()
        store = FaultyStore(jobs.store)
        jobs.store = store
        store.goes_away_after("reserve")  # the job is reserved, then the database is gone while it is sent
        submitted = await call(runtime, LITE, ARGS)
        assert not submitted.is_error, text_of(submitted)
        request_id = structured(submitted)["request_id"]
        assert posts(simulator) == 1 and store.failed  # RunComfy has it; the history could not be told

        # The caller follows it though the history has only the reservation: the recovery knows the id.
        status = await call(runtime, "get_status", {"request_id": request_id})
        assert not status.is_error and structured(status)["status"] == "in_queue", text_of(status)
        assert (await call(runtime, "get_status", {"request_id": request_id}, BOB)).is_error  # only the caller

        store.comes_back()
        listed = structured(await call(runtime, "list_jobs", {}))["jobs"]
        assert [(j["request_id"], j["status"]) for j in listed] == [(request_id, "in_queue")]  # no "unconfirmed-"
        stranger = await call(runtime, "get_status", {"request_id": request_id}, BOB)
        assert stranger.is_error and "no job" in text_of(stranger)

        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        done = await call(runtime, "wait_for_result", {"request_id": request_id, "timeout_s": 5})
        assert structured(done)["status"] == "succeeded"
        assert not (await call(runtime, LITE, ARGS)).is_error  # the finished job does not hold the one slot
    assert posts(simulator) == 2


async def test_a_job_recorded_only_in_memory_is_written_when_the_history_closes(
    api_url: str, simulator: Simulator, history: dict[str, Any]
) -> None:
    async with server(api_url, history) as runtime:
        jobs = runtime.tools.services.jobs()
        store = FaultyStore(jobs.store)
        jobs.store = store
        store.goes_away_after("reserve")
        request_id = structured(await call(runtime, LITE, ARGS))["request_id"]
        store.comes_back()  # and nobody calls again before the server stops
    async with server(api_url, history) as runtime:
        listed = structured(await call(runtime, "list_jobs", {}))["jobs"]
    assert [j["request_id"] for j in listed] == [request_id]


# ---------------------------------------------------------------- what the ledger counts (issue 22)


async def test_a_job_cancelled_in_the_queue_costs_nothing_and_a_failed_one_what_runcomfy_reports(
    api_url: str, simulator: Simulator, clock: ManualClock, history: dict[str, Any]
) -> None:
    async with server(api_url, history, budget_usd=1.0) as runtime:
        cancelled = structured(await call(runtime, LITE, ARGS))["request_id"]
        assert structured(await call(runtime, "cancel", {"request_id": cancelled}))["outcome"] == "cancelled"
        failing = structured(await call(runtime, LITE, {**ARGS, "prompt": "a cat [fail]"}))["request_id"]
        succeeding = structured(await call(runtime, LITE, {**ARGS, "duration": 10}))["request_id"]
        before = structured(await call(runtime, "get_account", {}))
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        failed = await call(runtime, "wait_for_result", {"request_id": failing, "timeout_s": 5})
        finished = await call(runtime, "get_result", {"request_id": succeeding})
        after = structured(await call(runtime, "get_account", {}))
    assert before["spent_usd"] == round(0.09 + 0.18, 6)  # the cancelled job counts nothing; the others their estimate
    assert failed.is_error and structured(finished)["status"] == "succeeded"
    assert structured(finished)["cost"] is None  # asked for, learned anyway: shown only when asked
    assert after["spent_usd"] == 0.18  # RunComfy charged nothing for the failed job, $0.18 for the other
    assert simulator.balance_usd == round(25 - 0.18, 6)  # the simulator charges neither the failed nor the cancelled


async def test_a_cost_that_is_not_money_is_not_recorded(
    api_url: str, simulator: Simulator, clock: ManualClock, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with server(api_url, history, budget_usd=1.0) as runtime:
        request_id = structured(await call(runtime, LITE, ARGS))["request_id"]
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        original = simulator._result_body

        def hostile(job: Any, include_cost: bool) -> dict[str, Any]:
            return {**original(job, include_cost), "cost": float("-inf")}

        class LaxJSONResponse(JSONResponse):  # writes -Infinity, as a broken upstream might
            def render(self, content: Any) -> bytes:
                return json.dumps(content).encode()

        monkeypatch.setattr(simulator, "_result_body", hostile)
        monkeypatch.setattr("runcomfy_mcp.sandbox.simulator.JSONResponse", LaxJSONResponse)
        shown = await call(runtime, "get_result", {"request_id": request_id, "include_cost": True})
        account = structured(await call(runtime, "get_account", {}))
    assert structured(shown)["cost"] is None and account["spent_usd"] == 0.09
    assert json.dumps(account)  # no NaN or infinity anywhere in what a client reads
