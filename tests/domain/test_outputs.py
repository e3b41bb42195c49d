"""A result's outputs never include an input it echoes, wherever that input sat in the arguments."""

from __future__ import annotations

from runcomfy_mcp.domain.outputs import collect_outputs


def test_an_echoed_input_from_inside_an_array_of_objects_is_not_an_output() -> None:
    pinned = "https://files.runcomfy.net/in/keyframe.png"
    arguments = {"prompt": "snow", "keyframes": [{"image_url": pinned, "frame_index": 3}]}
    output = {"video": "https://files.runcomfy.net/out/clip.mp4", "images": [pinned]}
    found = collect_outputs(output, list(arguments.values()))
    assert [(o.url, o.kind) for o in found] == [("https://files.runcomfy.net/out/clip.mp4", "video")]
