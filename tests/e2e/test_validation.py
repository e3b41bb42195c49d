"""Arguments are checked against the model's schema before anything is sent."""

from __future__ import annotations

import pytest

from helpers import IMAGE_URL, SEEDANCE_LITE_ARGS, structured, text_of
from mcp import Client
from runcomfy_mcp.sandbox.simulator import Simulator

pytestmark = pytest.mark.anyio

BAD_CALLS = [
    (
        "seedance_1_0_lite_image_to_video",
        {**SEEDANCE_LITE_ARGS, "duration": 7},
        ["duration: 7 is not allowed", "allowed values: 5, 10"],
    ),
    (
        "seedance_1_0_lite_image_to_video",
        {**SEEDANCE_LITE_ARGS, "resolution": "4k"},
        ['resolution: "4k" is not allowed', '"480p", "720p", "1080p"'],
    ),
    ("seedance_1_0_lite_image_to_video", {"prompt": "x"}, ["first_frame_image_url: missing; it is required"]),
    (
        "seedance_1_0_lite_image_to_video",
        {**SEEDANCE_LITE_ARGS, "prompt": "x" * 1901},
        ["prompt: 1901 characters is too long; at most 1900"],
    ),
    (
        "seedance_1_0_lite_image_to_video",
        {**SEEDANCE_LITE_ARGS, "negative_prompt": "blur"},
        ["negative_prompt: not a parameter of this model", "it accepts: prompt, first_frame_image_url"],
    ),
    (
        "seedance_v1_5_pro_image_to_video",
        {**SEEDANCE_LITE_ARGS, "generate_audio": "loud"},
        ['generate_audio: "loud" is a string, but it must be a boolean'],
    ),
    (
        "dreamina_3_0_image_to_video",
        {"prompt": "x", "image_urls": [IMAGE_URL, IMAGE_URL]},
        ["image_urls: 2 items given; at most 1 allowed"],
    ),
    ("dreamina_3_0_image_to_video", {"prompt": "x", "image_urls": []}, ["image_urls: 0 item(s) given; at least 1"]),
    (
        "seedance_1_0_lite_reference_to_video",
        {"prompt": "x", "images": [IMAGE_URL] * 5},
        ["text: missing", "prompt: not a parameter", "images: 5 items given; at most 4"],
    ),
    (
        "seedance_1_0_lite_reference_to_video",
        {"text": "x", "images": [IMAGE_URL], "seed": 1.5},
        ["seed: 1.5 is a number, but it must be an integer"],
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "words"), BAD_CALLS)
async def test_bad_arguments_are_named_and_nothing_is_sent(
    client: Client, simulator: Simulator, tool: str, arguments: dict, words: list[str]
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = text_of(result)
    for word in words:
        assert word in text, text
    assert "nothing was paid for" in text
    assert simulator.calls.count("POST") == 0


async def test_all_problems_are_reported_together(client: Client) -> None:
    result = await client.call_tool(
        "seedance_1_0_lite_image_to_video", {"prompt": 3, "duration": 7, "resolution": "8k"}
    )
    lines = [line for line in text_of(result).splitlines() if line.startswith("- ")]
    assert len(lines) == 4


async def test_unambiguous_strings_are_coerced(client: Client, simulator: Simulator) -> None:
    result = await client.call_tool(
        "dreamina_3_0_image_to_video",
        {"prompt": "x", "image_urls": IMAGE_URL, "number_of_frames": "241", "seed": "-1"},
    )
    assert not result.is_error, text_of(result)
    assert simulator.calls.submits[0]["arguments"] == {
        "prompt": "x",
        "image_urls": [IMAGE_URL],
        "number_of_frames": 241,
        "seed": -1,
    }


async def test_soft_advice_does_not_block(client: Client) -> None:
    result = await client.call_tool("seedance_v1_5_pro_image_to_video", {**SEEDANCE_LITE_ARGS, "prompt": "p" * 600})
    assert not result.is_error
    assert "500 characters" in text_of(result)
    assert structured(result)["notes"]
    lite = await client.call_tool(
        "seedance_1_0_lite_image_to_video",
        {**SEEDANCE_LITE_ARGS, "last_frame_image_url": IMAGE_URL, "resolution": "1080p"},
    )
    assert not lite.is_error and "no effect at 1080p" in text_of(lite)
