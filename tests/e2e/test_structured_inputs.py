"""RunComfy's richer schemas, offline: the plural media formats, arrays of objects that hold media and text at any
depth, arrays with no maxItems, and `type` given as a list. Media rules, probing and local-file inlining reach every
media field wherever it sits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import local_file, structured, text_of
from images import image_url, make_image, make_media
from mcp import Client
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator

pytestmark = pytest.mark.anyio

ELEMENTS = "kling/kling-v3/pro/elements-to-video"
ALEPH = "runway/aleph-2/video-to-video"
VIDU = "vidu/vidu-q2/reference-to-video"
SHORTEST_SIDE = "The shortest side must be at least 300 px."


async def run(client: Client, model_id: str, arguments: dict[str, Any]) -> tuple[bool, str]:
    result = await client.call_tool("run_model", {"model_id": model_id, "input": arguments})
    return result.is_error, text_of(result)


async def test_local_files_inside_elements_are_inlined_and_urls_probed(
    client: Client, simulator: Simulator, clock: ManualClock, tmp_path: Path
) -> None:
    photo = local_file(tmp_path, "hero.png", make_image(640, 480))
    voice = local_file(tmp_path, "voice.wav", make_media("audio"))
    arguments = {
        "elements": [
            {"name": "hero", "reference_image_urls": [photo, image_url(800, 600)], "voice_url": voice},
            {"name": "dog", "reference_image_urls": [image_url(500, 500)]},
        ],
        "multi_prompt": [{"prompt": "the hero waves", "duration": "5"}, {"prompt": "the dog barks", "duration": None}],
        "seed": None,
    }
    failed, text = await run(client, ELEMENTS, arguments)
    assert not failed, text
    sent = simulator.calls.submits[-1]["arguments"]
    hero = sent["elements"][0]
    assert hero["reference_image_urls"][0].startswith("data:image/png;base64,")  # read from disk, inlined
    assert hero["reference_image_urls"][1] == image_url(800, 600)  # public: probed, passed through
    assert hero["voice_url"].startswith("data:audio/")
    assert sent["elements"][1] == arguments["elements"][1] and sent["multi_prompt"] == arguments["multi_prompt"]
    assert "hero.png" in text and sent["seed"] is None
    job = structured(await client.call_tool("list_jobs", {}))["jobs"][0]["request_id"]
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    done = structured(await client.call_tool("get_result", {"request_id": job}))
    assert done["status"] == "succeeded" and len(done["video_urls"]) == 1


async def test_media_rules_reach_nested_fields_and_name_where_they_broke(
    client: Client, simulator: Simulator, tmp_path: Path
) -> None:
    tiny = local_file(tmp_path, "tiny.png", make_image(200, 200))
    clip = local_file(tmp_path, "clip.mp4", make_media("video"))
    arguments = {
        "elements": [
            {"reference_image_urls": [image_url(640, 480)]},
            {"reference_image_urls": [image_url(640, 480), tiny], "voice_url": clip},
        ],
        "multi_prompt": [{"prompt": "go"}],
    }
    failed, text = await run(client, ELEMENTS, arguments)
    assert failed and f"elements[1].reference_image_urls[1]: {SHORTEST_SIDE} (got 200×200)" in text, text
    assert "elements[1].voice_url:" in text and "not an audio file" in text
    keyframes = {
        "video_url": image_url(640, 480),
        "prompt": "snow",
        "keyframes": [{"image_url": tiny, "frame_index": 3}],
    }
    failed, text = await run(client, ALEPH, keyframes)
    assert failed and f"keyframes[0].image_url: {SHORTEST_SIDE}" in text and "video_url:" in text, text
    assert simulator.calls.submits == []


async def test_the_plural_formats_carry_images_videos_and_sounds(
    client: Client, simulator: Simulator, tmp_path: Path
) -> None:
    arguments = {
        "prompt": "a duet",
        "reference_images": [local_file(tmp_path, "a.png", make_image(640, 480)), image_url(640, 480)],
        "reference_videos": [local_file(tmp_path, "b.mp4", make_media("video"))],
        "reference_audios": [local_file(tmp_path, "c.wav", make_media("audio"))],
    }
    failed, text = await run(client, VIDU, arguments)
    assert not failed, text
    sent = simulator.calls.submits[-1]["arguments"]
    assert sent["reference_images"][0].startswith("data:image/png") and sent["reference_images"][1].startswith("https")
    assert sent["reference_videos"][0].startswith("data:video/mp4") and sent["reference_audios"][0].startswith("data:")
    wrong = {**arguments, "reference_audios": [local_file(tmp_path, "d.mp4", make_media("video"))]}
    failed, text = await run(client, VIDU, wrong)
    assert failed and "reference_audios[0]:" in text and "not an audio file" in text


async def test_an_array_without_max_items_is_capped_at_16(client: Client, simulator: Simulator) -> None:
    described = structured(await client.call_tool("describe_model", {"model_id": ELEMENTS}))
    assert described["input_schema"]["properties"]["multi_prompt"]["maxItems"] == 16
    assert described["input_schema"]["properties"]["elements"]["maxItems"] == 16
    many = {"elements": [{"reference_image_urls": [image_url(640, 480)]}], "multi_prompt": [{"prompt": "x"}] * 17}
    failed, text = await run(client, ELEMENTS, many)
    assert failed and "multi_prompt: 17 items given; at most 16 allowed." in text
    assert simulator.calls.submits == []


async def test_a_type_given_as_a_list_is_read(client: Client, simulator: Simulator) -> None:
    base = {"elements": [{"reference_image_urls": [image_url(640, 480)]}], "multi_prompt": [{"prompt": "x"}]}
    failed, text = await run(client, ELEMENTS, {**base, "seed": "42"})
    assert not failed, text
    assert simulator.calls.submits[-1]["arguments"]["seed"] == 42  # coerced, as for a plain integer
    failed, text = await run(client, ELEMENTS, {**base, "seed": "forty-two"})
    assert failed and 'seed: "forty-two" is a string, but it must be an integer or null.' in text
    described = await client.call_tool("describe_model", {"model_id": ELEMENTS})
    assert "seed (integer or null)" in text_of(described)


async def test_the_portable_schema_says_in_words_what_nested_media_take(client: Client) -> None:
    schema = structured(await client.call_tool("describe_model", {"model_id": ELEMENTS}))["input_schema"]
    element = schema["properties"]["elements"]["items"]["properties"]
    images = element["reference_image_urls"]
    assert "format" not in images and "validations" not in images
    assert "Image rules (each image): shortest side at least 300" in images["description"]
    assert "An https:// URL" in element["voice_url"]["description"] and "format" not in element["voice_url"]
    plural = structured(await client.call_tool("describe_model", {"model_id": VIDU}))["input_schema"]["properties"]
    assert all("format" not in plural[f] and "https://" in plural[f]["description"] for f in plural if f != "prompt")
