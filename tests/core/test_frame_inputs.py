"""Frame URIs in a call's inputs, found at any depth and taken once each, with a fake of where the videos are."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runcomfy_mcp.core.frame_inputs import FrameInputs
from runcomfy_mcp.core.job_files import SourceProblem
from runcomfy_mcp.domain.views import LOCAL_CALLER, Caller
from videos import numbered_clip, read_colour

pytestmark = pytest.mark.anyio


class FakeFiles:
    """Job `ready` has a 2 s clip; any other job is still running."""

    def __init__(self, clip: Path) -> None:
        self.clip = clip
        self.asked: list[str] = []

    async def file(self, source: str, kind: str, caller: Caller) -> Path:
        self.asked.append(source)
        if source != "ready":
            raise SourceProblem(f"job {source} is still in progress: follow it with wait_for_result")
        return self.clip


@pytest.fixture
def files(tmp_path: Path) -> FakeFiles:
    return FakeFiles(numbered_clip(tmp_path / "ready.mp4", frames=48))


def frame_index(uri: str) -> int:
    return read_colour(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))[0]


async def test_frames_are_found_at_any_depth_and_each_taken_once(files: FakeFiles) -> None:
    inputs = FrameInputs(files)  # type: ignore[arg-type]
    arguments: dict[str, Any] = {
        "prompt": "runcomfy://jobs/ready/frames/last is only words here",
        "image_url": "runcomfy://jobs/ready/frames/last",
        "images": ["runcomfy://jobs/ready/frames/first", "runcomfy://jobs/ready/frames/1.0"],
        "multi_prompt": [{"prompt": "x", "image": {"url": " runcomfy://jobs/ready/frames/last "}}],
    }
    done = await inputs.inline(arguments, LOCAL_CALLER)
    assert done.problems == []
    sent = done.arguments
    assert sent["prompt"] == arguments["prompt"]  # a frame URI inside text is not an input
    assert frame_index(sent["image_url"]) == 47 and sent["multi_prompt"][0]["image"]["url"] == sent["image_url"]
    assert [frame_index(u) for u in sent["images"]] == [0, 24]
    assert len(files.asked) == 3  # the last frame, asked for twice, taken once
    assert "multi_prompt[0].image.url: the last frame of job ready (at 1.958 s" in "\n".join(done.notes)


async def test_each_problem_names_its_field(files: FakeFiles) -> None:
    inputs = FrameInputs(files)  # type: ignore[arg-type]
    done = await inputs.inline(
        {
            "image_url": "runcomfy://jobs/running/frames/last",
            "images": ["runcomfy://jobs/ready/frames/9", "runcomfy://jobs/ready/frames/middle"],
        },
        LOCAL_CALLER,
    )
    assert done.problems[0].startswith("image_url: No frame of job running: job running is still in progress")
    assert done.problems[1].startswith("images[0]: The clip is 2.00 s long, so it has no frame at 9 s")
    assert done.problems[2].startswith("images[1]: 'middle' is not a frame position")
    assert done.arguments["image_url"] == "runcomfy://jobs/running/frames/last"  # left as given
