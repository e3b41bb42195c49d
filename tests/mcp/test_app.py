"""The whole tool surface through a real MCP client, against the loopback API simulator."""

from __future__ import annotations

import mcp_types as types
import pytest

from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from mcp import Client
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator

pytestmark = pytest.mark.anyio

MODEL_TOOLS = {
    "seedance_v1_5_pro_image_to_video": "bytedance/seedance-v1.5-pro/image-to-video",
    "dreamina_3_0_image_to_video": "bytedance/dreamina-3-0/image-to-video",
    "seedance_1_0_lite_image_to_video": "bytedance/seedance-1-0/lite/image-to-video",
    "seedance_1_0_lite_reference_to_video": "bytedance/seedance-1-0/lite/reference-to-video",
}


async def submit(client: Client, tool: str = "seedance_1_0_lite_image_to_video", **overrides: object) -> str:
    result = await client.call_tool(tool, {**SEEDANCE_LITE_ARGS, **overrides})
    assert not result.is_error, text_of(result)
    return str(structured(result)["request_id"])


async def test_lists_the_four_model_tools_and_the_tracking_tools(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        *MODEL_TOOLS,
        *("find_models", "describe_model", "run_model"),
        *("get_status", "get_result", "wait_for_result", "cancel", "list_jobs", "get_account", "estimate_cost"),
        "compose_video",
    }
    for name in (*MODEL_TOOLS, "run_model"):
        tool = tools[name]
        assert tool.title and tool.description and tool.output_schema is None  # a submit's text says it all
        assert hint(tool, "open_world_hint") is True and hint(tool, "destructive_hint") is False
        assert hint(tool, "read_only_hint") is False and hint(tool, "idempotent_hint") is False
    for name in ("get_status", "get_result", "find_models", "describe_model"):
        assert hint(tools[name], "read_only_hint") and hint(tools[name], "idempotent_hint")
        assert tools[name].output_schema
    assert hint(tools["cancel"], "destructive_hint") is True
    assert hint(tools["list_jobs"], "open_world_hint") is False
    film = tools["compose_video"]  # makes a film here: not read-only, never paid, linked to the player
    assert hint(film, "read_only_hint") is False and hint(film, "destructive_hint") is False
    assert film.output_schema is None and film.meta and film.meta["ui"]["resourceUri"].startswith("ui://")
    assert film.input_schema["properties"]["clips"]["maxItems"] == 20


def hint(tool: types.Tool, name: str) -> bool:
    """An annotation as a client reads it: absent means MCP's default."""
    defaults = {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False, "open_world_hint": True}
    value = getattr(tool.annotations, name) if tool.annotations else None
    return defaults[name] if value is None else bool(value)


async def test_model_tool_schema_is_portable_and_keeps_upstream_limits(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["dreamina_3_0_image_to_video"].input_schema
    image = schema["properties"]["image_urls"]
    assert "validations" not in image and image["items"] == {"type": "string"}
    assert (image["minItems"], image["maxItems"]) == (1, 1)
    assert "shortest side at least 320 px" in image["description"]
    assert "JPEG or PNG only" in image["description"]
    assert schema["properties"]["prompt"]["maxLength"] == 800
    assert schema["properties"]["number_of_frames"]["enum"] == [121, 241]
    assert schema["properties"]["seed"]["default"] == -1
    assert schema["required"] == ["image_urls", "prompt"]
    lite = tools["seedance_1_0_lite_image_to_video"].input_schema["properties"]["first_frame_image_url"]
    assert "each side more than 300 and less than 6000 px" in lite["description"]
    assert "aspect ratio more than 0.4 and less than 2.5" in lite["description"]
    assert "file size less than 30 MB" in lite["description"]


async def test_submit_posts_the_arguments_and_returns_at_once(client: Client, simulator: Simulator) -> None:
    result = await client.call_tool("seedance_1_0_lite_image_to_video", {**SEEDANCE_LITE_ARGS, "duration": 10})
    assert not result.is_error
    job = structured(result)
    assert job["model_id"] == "bytedance/seedance-1-0/lite/image-to-video"
    assert job["status"] == "in_queue"
    assert job["request_id"] in simulator.jobs
    assert simulator.calls.submits == [
        {"model_id": "bytedance/seedance-1-0/lite/image-to-video", "arguments": {**SEEDANCE_LITE_ARGS, "duration": 10}}
    ]
    text = text_of(result)
    assert "get_status" in text and "get_result" in text and job["request_id"] in text


async def test_each_model_tool_posts_to_its_own_endpoint(client: Client, simulator: Simulator) -> None:
    arguments = {
        "seedance_v1_5_pro_image_to_video": SEEDANCE_LITE_ARGS,
        "dreamina_3_0_image_to_video": {"prompt": "waves", "image_urls": ["https://images.example.com/800x600.jpg"]},
        "seedance_1_0_lite_image_to_video": SEEDANCE_LITE_ARGS,
        "seedance_1_0_lite_reference_to_video": {
            "text": "two friends",
            "images": ["https://images.example.com/512x512.png"],
        },
    }
    for tool, args in arguments.items():
        result = await client.call_tool(tool, args)
        assert not result.is_error, text_of(result)
    assert [s["model_id"] for s in simulator.calls.submits] == list(MODEL_TOOLS.values())


async def test_a_job_is_followed_from_queue_to_video_url(client: Client, clock: ManualClock) -> None:
    first = await submit(client)
    second = await submit(client)
    status = structured(await client.call_tool("get_status", {"request_id": second}))
    assert status == {"request_id": second, "status": "in_queue", "queue_position": 2, "finished": False}

    pending = await client.call_tool("get_result", {"request_id": first})
    assert not pending.is_error
    assert structured(pending)["status"] == "in_queue"
    assert "not finished yet" in text_of(pending) and "not an error" in text_of(pending)

    clock.advance(QUEUE_SECONDS + 0.1)
    running = structured(await client.call_tool("get_status", {"request_id": first}))
    assert running["status"] == "in_progress" and running["queue_position"] is None

    clock.advance(RUN_SECONDS)
    done = await client.call_tool("get_status", {"request_id": first})
    assert structured(done)["status"] == "completed"
    assert "does not yet mean it succeeded" in text_of(done)

    result = await client.call_tool("get_result", {"request_id": first})
    assert not result.is_error
    body = structured(result)
    assert body["status"] == "succeeded"
    assert body["video_urls"] == [body["output"]["video"]]
    assert body["video_urls"][0] in text_of(result)
    assert "runcomfy/simulated" not in (result.meta or {})  # the player's sandbox mark: a real server's never have it


async def test_a_failed_job_is_an_error_with_the_upstream_reason(client: Client, clock: ManualClock) -> None:
    request_id = await submit(client, prompt="a cat [fail]")
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    status = await client.call_tool("get_status", {"request_id": request_id})
    assert not status.is_error and structured(status)["status"] == "completed"
    result = await client.call_tool("get_result", {"request_id": request_id})
    assert result.is_error
    assert "Simulated failure" in text_of(result)
    assert structured(result)["status"] == "failed"


async def test_cancel_works_while_queued_and_says_so_when_it_cannot(client: Client, clock: ManualClock) -> None:
    queued = await submit(client)
    outcome = await client.call_tool("cancel", {"request_id": queued})
    assert structured(outcome)["outcome"] == "cancelled"
    assert structured(await client.call_tool("get_status", {"request_id": queued}))["status"] == "cancelled"

    running = await submit(client)
    clock.advance(QUEUE_SECONDS + 0.1)
    refused = await client.call_tool("cancel", {"request_id": running})
    assert not refused.is_error
    assert structured(refused)["outcome"] == "not_cancellable"
    assert "goes on" in text_of(refused) and "charged" in text_of(refused)


async def test_unknown_request_id_is_explained(client: Client) -> None:
    for tool in ("get_status", "get_result", "wait_for_result", "cancel"):
        result = await client.call_tool(tool, {"request_id": "no-such-job"})
        assert result.is_error
        assert "no such request" in text_of(result)


async def test_malformed_request_id_is_refused_before_any_request(client: Client, simulator: Simulator) -> None:
    for bad in ["../../v1/models", "", "a b", "x" * 200, 42, None]:
        result = await client.call_tool("get_status", {"request_id": bad})
        assert result.is_error and "not a RunComfy request id" in text_of(result)
    result = await client.call_tool("get_result", {})
    assert result.is_error and "request_id: missing; get_result needs it" in text_of(result)
    assert simulator.calls.requests == []


async def test_unknown_tool_is_an_error_result(client: Client) -> None:
    result = await client.call_tool("make_me_a_movie", {})
    assert result.is_error and "get_status" in text_of(result)


async def test_include_cost_reports_the_cost(client: Client, clock: ManualClock) -> None:
    request_id = await submit(client)
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    result = await client.call_tool("get_result", {"request_id": request_id, "include_cost": True})
    assert structured(result)["cost"] == 0.09  # $0.018 per second × 5 s, taken from the sandbox's balance
    assert "Cost: $0.09" in text_of(result)
    job = structured(await client.call_tool("list_jobs", {}))["jobs"][0]
    assert job["cost"] == 0.09 and job["estimated_cost_usd"] == 0.09  # the history shows both


async def test_server_identifies_itself(client: Client) -> None:
    assert client.server_info is not None and client.server_info.name == "runcomfy-mcp"


def test_tool_results_are_call_tool_results() -> None:
    assert types.CallToolResult(content=[]).is_error is False


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        ("list_jobs", {"status": "sucess"}, "status: 'sucess' is not accepted"),
        ("list_jobs", {"limit": 2.5}, "limit: 2.5 is not accepted"),
        ("list_jobs", {"limit": 0}, "limit: 0 is not accepted"),
        ("list_jobs", {"statuss": "failed"}, "statuss: list_jobs has no such argument; it takes status, limit"),
        ("wait_for_result", {"request_id": "sim-1", "timeout_s": 601}, "timeout_s: 601 is not accepted"),
        ("get_result", {"request_id": "sim-1", "download": "maybe"}, "download: 'maybe' is not accepted"),
    ],
)
async def test_job_tool_arguments_are_checked_against_their_schema(
    client: Client, tool: str, arguments: dict[str, object], words: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error and words in text_of(result), text_of(result)


TOOLS_LIST_BUDGET = 18 * 1024  # every tool's schema is context paid for on every turn (compose_video: 1.6 KB)


async def test_tools_list_stays_within_its_budget(client: Client) -> None:
    listing = await client.list_tools()
    size = len(listing.model_dump_json(by_alias=True, exclude_none=True))
    print(f"\ntools/list: {size:,} bytes for {len(listing.tools)} tools (budget {TOOLS_LIST_BUDGET:,})")
    assert size <= TOOLS_LIST_BUDGET
