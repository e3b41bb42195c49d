"""Prices, estimates, spending limits, consent and the balance, through real MCP clients against the simulator."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from conftest import TOKEN, ClientFactory
from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from images import make_image
from mcp import Client, StdioServerParameters
from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.domain.pricing import Price, estimate_cost
from runcomfy_mcp.sandbox.simulator import Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"  # $0.018 per second in the simulator's catalog: 5 s = $0.09
SPEECH = "minimax/speech-2-6/hd/text-to-speech"  # $0.1 per 1k characters
HOLO_PRICE_UNIT = "megapixel"
SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")


def posts(simulator: Simulator) -> int:
    return len(simulator.calls.submits)


def settings(api_url: str, **limits: Any) -> Settings:
    return Settings(api_token=TOKEN, base_url=api_url, **limits)


# ---------------------------------------------------------------- estimates


@pytest.mark.parametrize(
    ("price", "arguments", "usd", "basis"),
    [
        (Price(0.018, "second"), {"duration": 10}, 0.18, "× 10 s"),
        (Price(0.018, "second"), {}, 0.09, "× 5 s"),  # the schema's default duration
        (Price(0.09, "second"), {"duration": "10"}, 0.9, "× 10 s"),
        (Price(1.2, "minute"), {"duration": 30}, 0.6, "× 30 s"),
        (Price(0.05, "second"), {"number_of_frames": 241}, 0.5021, "241 frames at 24 fps"),
        (Price(0.008, "output"), {"num_images": 4}, 0.032, "× 4 outputs"),
        (Price(0.14, "video"), {}, 0.14, "$0.14 per video"),
        (Price(0.1, "1k_characters"), {"text": "x" * 2500}, 0.25, "× 2500 characters"),
        (Price(0.2, HOLO_PRICE_UNIT), {}, None, "a unit this server does not know ('megapixel')"),
        (None, {}, None, "gives no price"),
    ],
)
def test_estimates_follow_the_price_unit(
    price: Price | None, arguments: dict[str, Any], usd: float | None, basis: str
) -> None:
    schema = {"properties": {"duration": {"type": "integer", "default": 5}}}
    estimate = estimate_cost(price, arguments, schema)
    assert (round(estimate.usd, 4) if estimate.usd is not None else None) == usd
    assert basis in estimate.basis


def test_a_length_that_cannot_be_told_is_not_guessed() -> None:
    spec = next(s for s in load_specs() if s.tool_name == LITE)
    assert estimate_cost(Price(0.1, "second"), {"prompt": "x"}, {"properties": {}}).usd is None
    assert estimate_cost(Price(0.018, "second"), {}, spec.input_schema).usd == 0.09


async def test_a_submit_says_its_estimate_and_the_history_keeps_it(client: Client, simulator: Simulator) -> None:
    result = await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, "duration": 10})
    job = structured(result)
    assert job["estimated_cost_usd"] == 0.18 and "Estimated cost: $0.18 ($0.018 per second × 10 s)" in text_of(result)
    record = structured(await client.call_tool("list_jobs", {}))["jobs"][0]
    assert record["estimated_cost_usd"] == 0.18 and record["request_id"] == job["request_id"]


async def test_an_unknown_unit_is_said_and_the_job_still_runs_without_a_budget(
    client: Client, simulator: Simulator
) -> None:
    simulator.catalog[SPEECH]["price_unit"] = HOLO_PRICE_UNIT
    result = await client.call_tool("run_model", {"model_id": SPEECH, "input": {"text": "hello"}})
    assert not result.is_error and structured(result)["estimated_cost_usd"] is None
    assert "Cost not estimated: price unknown" in text_of(result) and posts(simulator) == 1


# ---------------------------------------------------------------- limits


async def test_max_job_usd_refuses_a_big_job_and_lets_a_small_one_through(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    async with connect(settings(api_url, max_job_usd=0.1)) as client:
        big = await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, "duration": 10})
        assert big.is_error and "RUNCOMFY_MAX_JOB_USD" in text_of(big) and "$0.18" in text_of(big)
        assert posts(simulator) == 0
        small = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
        assert not small.is_error and posts(simulator) == 1


async def test_the_budget_counts_estimates_and_says_when_room_frees_up(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    async with connect(settings(api_url, budget_usd=0.2)) as client:
        for _ in range(2):
            assert not (await client.call_tool(LITE, SEEDANCE_LITE_ARGS)).is_error
        third = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
        text = text_of(third)
        assert third.is_error and "RUNCOMFY_BUDGET_USD" in text and "$0.18 is spent or reserved" in text
        assert "$0.02 is left" in text and "Enough room frees up at" in text and "UTC" in text
        assert posts(simulator) == 2
        account = structured(await client.call_tool("get_account", {}))
    assert account["spent_usd"] == 0.18 and account["limits"]["budget_left_usd"] == 0.02
    assert account["by_model"] == [
        {"model_id": "bytedance/seedance-1-0/lite/image-to-video", "spent_usd": 0.18, "jobs": 2}
    ]


async def test_with_a_budget_an_unpriced_model_is_refused_unless_allowed(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    simulator.catalog[SPEECH]["price_unit"] = HOLO_PRICE_UNIT
    call = {"model_id": SPEECH, "input": {"text": "hello"}}
    async with connect(settings(api_url, budget_usd=5)) as client:
        refused = await client.call_tool("run_model", call)
    assert refused.is_error and "RUNCOMFY_ALLOW_UNPRICED" in text_of(refused) and posts(simulator) == 0
    async with connect(settings(api_url, budget_usd=5, allow_unpriced=True)) as client:
        assert not (await client.call_tool("run_model", call)).is_error
    assert posts(simulator) == 1


async def test_jobs_per_hour_and_active_jobs_are_capped(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    async with connect(settings(api_url, max_jobs_per_hour=2)) as client:
        for _ in range(2):
            assert not (await client.call_tool(LITE, SEEDANCE_LITE_ARGS)).is_error
        third = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
    assert (
        third.is_error and "RUNCOMFY_MAX_JOBS_PER_HOUR=2" in text_of(third) and "next slot frees at" in text_of(third)
    )
    assert posts(simulator) == 2
    async with connect(settings(api_url, max_active_jobs=2)) as client:  # the same history: 2 jobs still queued
        refused = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
        assert refused.is_error and "RUNCOMFY_MAX_ACTIVE_JOBS=2" in text_of(refused) and posts(simulator) == 2
        for job in structured(await client.call_tool("list_jobs", {}))["jobs"]:
            await client.call_tool("cancel", {"request_id": job["request_id"]})
        assert not (await client.call_tool(LITE, SEEDANCE_LITE_ARGS)).is_error
    assert posts(simulator) == 3


async def test_twenty_racing_submits_from_two_processes_never_pass_the_budget(
    api_url: str, simulator: Simulator, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image(640, 480))
    arguments = {**SEEDANCE_LITE_ARGS, "first_frame_image_url": str(photo)}
    env = {
        **os.environ,
        "RUNCOMFY_API_TOKEN": TOKEN,
        "RUNCOMFY_BASE_URL": api_url,
        "RUNCOMFY_DATA_DIR": str(tmp_path / "shared-history"),
        "RUNCOMFY_INPUT_ROOTS": str(tmp_path),
        "RUNCOMFY_BUDGET_USD": "0.5",  # room for 5 jobs of $0.09
    }
    results: list[types.CallToolResult] = []
    async with (
        Client(StdioServerParameters(command=str(SCRIPT), args=[], env=env)) as first,
        Client(StdioServerParameters(command=str(SCRIPT), args=[], env=env)) as second,
        anyio.create_task_group() as group,
    ):

        async def submit(client: Client) -> None:
            results.append(await client.call_tool(LITE, arguments))

        for i in range(20):
            group.start_soon(submit, first if i % 2 else second)
    accepted = [r for r in results if not r.is_error]
    assert len(results) == 20 and len(accepted) == 5 and posts(simulator) == 5
    assert all("RUNCOMFY_BUDGET_USD" in text_of(r) for r in results if r.is_error)


# ---------------------------------------------------------------- consent


def answering(action: str, confirm: bool = True) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        content = {"confirm": confirm} if action == "accept" else None
        return types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


@pytest.mark.parametrize(
    ("action", "confirm", "sent"),
    [("accept", True, 1), ("accept", False, 0), ("decline", True, 0), ("cancel", True, 0)],
)
async def test_a_job_above_the_threshold_asks_the_person_first(
    connect: ClientFactory, api_url: str, simulator: Simulator, action: str, confirm: bool, sent: int
) -> None:
    ask = answering(action, confirm)
    async with connect(settings(api_url, confirm_above_usd=0.1), elicitation_callback=ask) as client:
        cheap = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)  # $0.09: below the threshold, never asked
        assert not cheap.is_error and ask.asked == []
        big = await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, "duration": 10})
    assert len(ask.asked) == 1 and "$0.18" in ask.asked[0] and "balance is $24.91" in ask.asked[0]
    assert posts(simulator) == 1 + sent
    if sent:
        assert not big.is_error
    else:
        assert big.is_error and "nothing was sent" in text_of(big)


async def test_a_client_without_elicitation_is_told_about_the_threshold(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    async with connect(settings(api_url, confirm_above_usd=0.1)) as client:
        result = await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, "duration": 10})
    text = text_of(result)
    assert result.is_error and "RUNCOMFY_CONFIRM_ABOVE_USD" in text and "elicitation" in text and posts(simulator) == 0


# ---------------------------------------------------------------- the balance


async def test_an_estimate_above_the_balance_is_refused_before_sending(client: Client, simulator: Simulator) -> None:
    simulator.balance_usd = 0.1
    result = await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, "duration": 10})
    assert result.is_error and "$0.18" in text_of(result) and "balance of $0.10" in text_of(result)
    assert posts(simulator) == 0


async def test_runcomfys_own_insufficient_balance_refusal_reads_well(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    simulator.balance_usd = 0.05  # the account API is down, so only RunComfy itself can say no
    async with connect(settings(api_url, account_url="http://127.0.0.1:9")) as client:
        result = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
    assert result.is_error and "insufficient balance" in text_of(result) and "Nothing was charged" in text_of(result)
    assert posts(simulator) == 0


async def test_get_account_shows_balance_spending_and_limits(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    limits = {"budget_usd": 1.0, "max_jobs_per_hour": 10, "max_active_jobs": 3, "max_job_usd": 0.5}
    async with connect(settings(api_url, **limits)) as client:
        await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
        await client.call_tool("run_model", {"model_id": SPEECH, "input": {"text": "x" * 1000}})
        result = await client.call_tool("get_account", {})
    account = structured(result)
    assert account["balance_usd"] == round(25 - 0.09 - 0.1, 6) and account["jobs"] == 2
    assert account["spent_usd"] == 0.19 and account["limits"]["budget_left_usd"] == 0.81
    assert account["limits"]["jobs_left_this_hour"] == 8 and account["limits"]["active_jobs"] == 2
    assert [m["model_id"] for m in account["by_model"]] == [SPEECH, "bytedance/seedance-1-0/lite/image-to-video"]
    assert "RunComfy balance: $24.81" in text_of(result) and "$0.81 of the budget" in text_of(result)


async def test_estimate_cost_quotes_without_sending(connect: ClientFactory, api_url: str, simulator: Simulator) -> None:
    limits = {"budget_usd": 0.1, "confirm_above_usd": 0.05}
    async with connect(settings(api_url, **limits)) as client:
        quote = await client.call_tool("estimate_cost", {"model_id": LITE, "input": SEEDANCE_LITE_ARGS})
        assert structured(quote)["estimated_cost_usd"] == 0.09 and structured(quote)["needs_confirmation"] is True
        assert "Nothing was sent" in text_of(quote) and structured(quote)["refusal"] is None
        longer = await client.call_tool(
            "estimate_cost",
            {"model_id": "bytedance/seedance-1-0/lite/image-to-video", "input": {**SEEDANCE_LITE_ARGS, "duration": 10}},
        )
        assert (
            structured(longer)["estimated_cost_usd"] == 0.18 and "RUNCOMFY_BUDGET_USD" in structured(longer)["refusal"]
        )
        bad = await client.call_tool("estimate_cost", {"model_id": LITE, "input": {"prompt": "x", "duration": 7}})
        assert bad.is_error and "first_frame_image_url: missing" in text_of(bad) and "duration: 7" in text_of(bad)
        # Only the length sets the price: a quote before the image is chosen, naming what a submit will still need.
        early = await client.call_tool("estimate_cost", {"model_id": LITE, "input": {"duration": 10}})
        assert not early.is_error and structured(early)["estimated_cost_usd"] == 0.18
        needed = structured(early)["still_needed"]
        assert sorted(n.split(":")[0] for n in needed) == ["first_frame_image_url", "prompt"]
        assert "a submit will also need: " in text_of(early) and "first_frame_image_url: missing" in text_of(early)
        submit = await client.call_tool(LITE, {"duration": 10})  # a submit still needs them all
        assert submit.is_error and "first_frame_image_url: missing" in text_of(submit)
    assert posts(simulator) == 0


async def test_over_http_each_caller_has_their_own_budget(api_url: str, simulator: Simulator, tmp_path: Path) -> None:
    from runcomfy_mcp.domain.views import Caller
    from runcomfy_mcp.runtime import open_runtime

    simulator.tokens.add("bob-token-456")
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image(640, 480))

    async def no_progress(progress: float, message: str) -> None:
        return None

    alice, bob = Caller.with_token(TOKEN), Caller.with_token("bob-token-456")
    data = "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
    arguments = {**SEEDANCE_LITE_ARGS, "first_frame_image_url": data}
    async with open_runtime(settings(api_url, budget_usd=0.1), serving="http") as runtime:
        first = await runtime.tools.call(LITE, arguments, no_progress, alice)
        second = await runtime.tools.call(LITE, arguments, no_progress, alice)
        bobs = await runtime.tools.call(LITE, arguments, no_progress, bob)  # alice's spending is not bob's
        bob_account = structured(await runtime.tools.call("get_account", {}, no_progress, bob))
    assert not first.is_error and second.is_error and "RUNCOMFY_BUDGET_USD" in text_of(second)
    assert not bobs.is_error and bob_account["jobs"] == 1 and bob_account["spent_usd"] == 0.09
    assert posts(simulator) == 2
