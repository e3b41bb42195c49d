"""Prompts from a client's menu, completion of their arguments, and caching hints on what every caller shares."""

from __future__ import annotations

import mcp_types as types
import pytest

from helpers import SEEDANCE_LITE_ARGS, structured
from mcp import Client

pytestmark = pytest.mark.anyio


async def test_the_prompts_are_listed_with_their_arguments(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == {"animate_image", "storyboard", "variations", "follow_job"}
    arguments = {a.name: a.required for a in prompts["storyboard"].arguments or []}
    assert arguments == {"story": True, "shots": False, "image": False, "music": False, "model": False}


async def test_a_prompt_is_filled_in_and_a_missing_argument_is_named(client: Client) -> None:
    result = await client.get_prompt("storyboard", {"story": "a fox learns to fly", "shots": "3"})
    text = result.messages[0].content
    assert isinstance(text, types.TextContent) and "3 shots" in text.text and "a fox learns to fly" in text.text
    assert "estimate_cost" in text.text and "wait_for_result" in text.text
    # the whole way to a film: each shot from the previous one's last frame, then cut together
    assert "runcomfy://jobs/<previous request_id>/frames/last" in text.text and "compose_video" in text.text
    assert "music" not in text.text.split("compose_video")[1]  # no soundtrack unless asked for
    scored = await client.get_prompt("storyboard", {"story": "a fox", "music": "calm piano", "image": "/tmp/fox.png"})
    words = scored.messages[0].content
    assert isinstance(words, types.TextContent) and "from this image: /tmp/fox.png" in words.text
    assert "music (calm piano)" in words.text and "the music as audio" in words.text
    with pytest.raises(Exception, match="needs motion"):
        await client.get_prompt("animate_image", {"image": "/tmp/cat.png"})


async def test_model_ids_and_request_ids_are_completed(client: Client) -> None:
    models = await client.complete(types.PromptReference(name="animate_image"), {"name": "model", "value": "kling"})
    assert models.completion.values[:2] == [
        "kling/kling-v2-1/master/text-to-video",
        "kling/kling-v2-1/pro/image-to-video",
    ] and all("kling" in v for v in models.completion.values)
    job = structured(await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS))
    prefix = job["request_id"][:6]
    ids = await client.complete(types.PromptReference(name="follow_job"), {"name": "request_id", "value": prefix})
    assert ids.completion.values == [job["request_id"]]
    template = types.ResourceTemplateReference(uri="runcomfy://jobs/{request_id}")
    assert (await client.complete(template, {"name": "request_id", "value": ""})).completion.values == [
        job["request_id"]
    ]


@pytest.mark.parametrize("mode", ["auto"])
async def test_what_every_caller_shares_may_be_cached_and_their_jobs_not(client: Client) -> None:
    tools = await client.list_tools()
    assert (tools.ttl_ms, tools.cache_scope) == (300_000, "public")
    resources = await client.list_resources()
    assert (resources.ttl_ms, resources.cache_scope) == (0, "private")
    player = await client.read_resource("ui://runcomfy/player.html")
    assert player.cache_scope == "public"
