"""Words an assistant and a person read, through a real MCP client against the simulator: amounts with cents,
counts that agree with their noun, sizes in the unit that fits, rules named as a person would."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from conftest import TOKEN, ClientFactory
from helpers import structured, text_of
from images import make_image
from mcp import Client
from runcomfy_mcp.runtime import Serving
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"
WAN = "wan-ai/wan-2-2/a14b/text-to-video"  # $0.4 a video in the simulator's catalog


async def test_prices_and_estimates_read_with_cents(client: Client) -> None:
    found = text_of(await client.call_tool("find_models", {"query": "wan"}))
    assert "$0.40/video" in found and "$0.4/" not in found
    described = text_of(await client.call_tool("describe_model", {"model_id": WAN}))
    assert f"{WAN}: Wan 2.2 A14B: text to video ($0.40/video)." in described
    quote = text_of(await client.call_tool("estimate_cost", {"model_id": WAN, "input": {"prompt": "a fox"}}))
    assert "estimated cost $0.40 ($0.40 per video)" in quote
    account = text_of(await client.call_tool("get_account", {}))
    assert "RunComfy balance: $25.00." in account and "Spent in the last 24 h: $0.00 on 0 jobs" in account


async def test_one_unfinished_job_is_one_job(connect: ClientFactory, api_url: str, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image(640, 480))
    async with connect(Settings(api_token=TOKEN, base_url=api_url, max_active_jobs=1)) as client:
        first = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": str(photo)})
        assert not first.is_error, text_of(first)
        note = f"photo.png ({round(photo.stat().st_size / 1024)} KB) was read from disk"
        assert note in text_of(first) and "0.0 MB" not in text_of(first)
        second = await client.call_tool(LITE, {"prompt": "a dog", "first_frame_image_url": str(photo)})
        assert second.is_error and "1 job is still unfinished, the most allowed at once" in text_of(second)
        assert "follow it with wait_for_result" in text_of(second)
        account = text_of(await client.call_tool("get_account", {}))
        assert "at most 1 unfinished job at once" in account and "0 more unfinished jobs at once" in account
        listed = text_of(await client.call_tool("list_jobs", {}))
        assert listed.startswith("1 job, newest first:")


async def test_media_rules_say_aspect_ratio(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    described = str(tools[LITE].input_schema["properties"]["first_frame_image_url"]["description"])
    assert "aspect ratio more than 0.4 and less than 2.5" in described
    assert "width/height" not in described
    wide = "data:image/png;base64," + base64.b64encode(make_image(1500, 400)).decode()
    refused = await client.call_tool(LITE, {"prompt": "x", "first_frame_image_url": wide})
    assert refused.is_error and "(got 1500×400, an aspect ratio of 3.75)" in text_of(refused)
    assert structured(await client.call_tool("list_jobs", {}))["jobs"] == []


async def test_an_unknown_balance_says_why(connect: ClientFactory, api_url: str) -> None:
    from http_servers import free_port

    unreachable = f"http://127.0.0.1:{free_port()}"  # the account API is down; the Model API is not
    async with connect(Settings(api_token=TOKEN, base_url=api_url, account_url=unreachable)) as client:
        account = await client.call_tool("get_account", {})
    words = text_of(account)
    assert not account.is_error and structured(account)["balance_usd"] is None
    assert "RunComfy balance: unknown, it could not be read. Reading the RunComfy balance failed:" in words
    assert "could not be reached" in words and structured(account)["balance_unknown_because"] in words
    assert TOKEN not in words


@pytest.mark.parametrize("serving", ["stdio", "http"])
async def test_a_download_is_never_advised_to_the_call_that_asked_for_it(
    connect: ClientFactory, api_url: str, clock: ManualClock, serving: Serving
) -> None:
    photo = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
    async with connect(Settings(api_token=TOKEN, base_url=api_url), serving=serving) as client:
        job = structured(await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": photo}))
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        plain = text_of(await client.call_tool("get_result", {"request_id": job["request_id"]}))
        assert "call get_result with download=true to keep a copy" in plain
        for tool in ("get_result", "wait_for_result"):
            saved = await client.call_tool(tool, {"request_id": job["request_id"], "download": True})
            words = text_of(saved)
            assert not saved.is_error and "download=true" not in words, words
            where = "Saved to:" if serving == "stdio" else "Saved on the server as"
            assert where in words
