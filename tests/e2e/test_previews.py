"""Previews: the assistant sees what a job made, once per job, never at the cost of the result."""

from __future__ import annotations

import base64
import io

import mcp_types as types
import pytest
from PIL import Image

from conftest import TOKEN, ClientFactory
from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from mcp import Client
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"


def picture(result: types.CallToolResult) -> Image.Image:
    first = result.content[0]
    assert isinstance(first, types.ImageContent) and first.mime_type == "image/jpeg", result.content
    data = base64.b64decode(first.data)
    assert len(data) <= 300 * 1024
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def finished_job(client: Client, clock: ManualClock, **arguments: object) -> str:
    job = structured(await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, **arguments}))
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    return str(job["request_id"])


async def test_a_video_is_shown_as_frames_across_the_clip_fetched_once(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    url, simulator = video_api
    async with connect(Settings(api_token=TOKEN, base_url=url)) as client:
        request_id = await finished_job(client, clock, duration=10)
        result = await client.call_tool("wait_for_result", {"request_id": request_id})
        again = await client.call_tool("get_result", {"request_id": request_id})
    sheet = picture(result)
    assert max(sheet.size) <= 1024 and sheet.size[0] > 500
    frames = structured(result)["preview"]["frames_at_s"]
    assert len(frames) == 6 and frames[0] < 1.5 and frames[-1] > 8.5 and frames == sorted(frames)
    assert "Preview: 6 frames" in text_of(result) and "0.8, 2.5" in text_of(result)
    assert picture(again).size == sheet.size
    assert simulator.calls.count("GET", "/files/") == 1  # kept beside the history: never a second fetch


async def test_a_download_is_the_preview_source(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    url, simulator = video_api
    async with connect(Settings(api_token=TOKEN, base_url=url)) as client:
        request_id = await finished_job(client, clock)
        result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert picture(result) and structured(result)["local_files"]
    assert simulator.calls.count("GET", "/files/") == 1


async def test_previews_can_be_turned_off(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    url, simulator = video_api
    async with connect(Settings(api_token=TOKEN, base_url=url)) as client:
        request_id = await finished_job(client, clock)
        result = await client.call_tool("get_result", {"request_id": request_id, "preview": False})
    assert not any(isinstance(c, types.ImageContent) for c in result.content)
    async with connect(Settings(api_token=TOKEN, base_url=url, previews=False)) as client:
        result = await client.call_tool("get_result", {"request_id": request_id})
    assert not any(isinstance(c, types.ImageContent) for c in result.content) and structured(result)["preview"] is None
    assert simulator.calls.count("GET", "/files/") == 0


async def test_an_undecodable_video_is_a_note_not_an_error(
    client: Client, simulator: Simulator, clock: ManualClock
) -> None:
    request_id = await finished_job(client, clock)  # the default simulator serves bytes that are no video
    first = await client.call_tool("get_result", {"request_id": request_id})
    second = await client.call_tool("get_result", {"request_id": request_id})
    assert not first.is_error and structured(first)["status"] == "succeeded" and structured(first)["video_urls"]
    assert "No preview: the video could not be decoded" in text_of(first) and "No preview" in text_of(second)
    assert simulator.calls.count("GET", "/files/") == 1  # the verdict is remembered too


async def test_a_video_over_the_preview_cap_is_said_and_not_fetched_whole(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    url, simulator = video_api
    simulator.stream_files = True
    async with connect(Settings(api_token=TOKEN, base_url=url, preview_max_mb=0.001)) as client:
        request_id = await finished_job(client, clock)
        result = await client.call_tool("get_result", {"request_id": request_id})
    assert not result.is_error and "RUNCOMFY_PREVIEW_MAX_MB" in text_of(result)


async def test_an_image_output_is_shown_itself(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    url, _ = video_api
    async with connect(Settings(api_token=TOKEN, base_url=url)) as client:
        job = structured(
            await client.call_tool(
                "run_model", {"model_id": "blackforestlabs/flux-2/flash/text-to-image", "input": {"prompt": "a kite"}}
            )
        )
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        result = await client.call_tool("get_result", {"request_id": job["request_id"]})
    image = picture(result)
    assert image.size == (64, 48) and structured(result)["preview"]["frames_at_s"] == []
    assert "Preview: the image" in text_of(result)


async def test_the_player_is_a_self_contained_app_linked_from_the_tools(client: Client, api_url: str) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    linked = {name for name, tool in tools.items() if (tool.meta or {}).get("ui", {}).get("resourceUri")}
    assert linked == {
        "seedance_v1_5_pro_image_to_video",
        "dreamina_3_0_image_to_video",
        "seedance_1_0_lite_image_to_video",
        "seedance_1_0_lite_reference_to_video",
        "run_model",
        "get_result",
        "wait_for_result",
        "compose_video",
    }
    uri = tools["get_result"].meta["ui"]["resourceUri"]  # type: ignore[index]
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, types.TextResourceContents) and contents.mime_type == "text/html;profile=mcp-app"
    domains = contents.meta["ui"]["csp"]["resourceDomains"]  # type: ignore[index]
    assert "https://*.runcomfy.net" in domains and "https://*.runcomfy.com" in domains
    assert api_url in domains  # the API's origin serves files here
    html = contents.text.lower()
    for external in ("<script src", "<link", "@import", "url(", "http://", "https://"):
        assert external not in html, external  # nothing loaded from anywhere: one self-contained file
    listed = [r for r in (await client.list_resources()).resources if str(r.uri) == uri]
    assert listed and listed[0].mime_type == "text/html;profile=mcp-app"


async def test_more_player_domains_can_be_added(connect: ClientFactory, api_url: str) -> None:
    settings = Settings(api_token=TOKEN, base_url=api_url, player_domains="https://cdn.example.com/, https://x.test")
    async with connect(settings) as client:
        contents = (await client.read_resource("ui://runcomfy/player.html")).contents[0]
    domains = contents.meta["ui"]["csp"]["resourceDomains"]  # type: ignore[index]
    assert domains[-2:] == ["https://cdn.example.com", "https://x.test"]
