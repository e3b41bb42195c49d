"""The sandbox's outputs are real media that behave like a model's: clips that start (and end) on the frames
they were given, and music of the length asked for."""

from __future__ import annotations

import base64
import io
from importlib import resources

import av
import httpx
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import TOKEN
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.sandbox.video import make_video
from videos import difference, frames_of

pytestmark = pytest.mark.anyio


def sample() -> Image.Image:
    return Image.open(resources.files("runcomfy_mcp.sandbox") / "sample.jpg").convert("RGB")


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_clip_starts_on_its_first_frame_and_ends_on_its_last() -> None:
    first, last = sample(), ImageOps.mirror(ImageOps.grayscale(sample()).convert("RGB"))
    made = frames_of(make_video(png(first), 2.0, png(last)))
    assert len(made) == 24 and made[0].width == 640
    assert difference(made[0], first) < 4  # the given frame itself, as H.264 keeps it
    assert difference(made[-1], last) < 4
    assert difference(made[-1], first) > 20 and difference(made[12], first) > 8  # and the clip moves between them


def test_a_clip_without_a_last_frame_pushes_in_on_the_first() -> None:
    made = frames_of(make_video(png(sample()), 1.0))
    assert difference(made[0], sample()) < 4 and difference(made[-1], sample()) > 6


async def test_the_music_model_makes_music_as_long_as_asked(
    simulator: Simulator, api_url: str, clock: ManualClock
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=auth) as http:
        submitted = await http.post(
            f"{api_url}/v1/models/minimax/music-1-5/text-to-music", json={"prompt": "calm piano", "duration": 12}
        )
        request_id = submitted.json()["request_id"]
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        result = (await http.get(f"{api_url}/v1/requests/{request_id}/result")).json()
        audio = await http.get(result["output"]["audio"])
    assert audio.headers["content-type"].startswith("audio/")
    with av.open(io.BytesIO(audio.content)) as container:
        stream = container.streams.audio[0]
        assert not container.streams.video and stream.channels == 2
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(stream)]).astype(float)
    assert len(samples) / 2 / stream.rate == pytest.approx(12, abs=0.05)
    loudness = [np.sqrt(np.mean(samples[i : i + 22050] ** 2)) / 32768 for i in range(0, len(samples), 22050 * 4)]
    assert min(loudness) > 0.05  # sound throughout, not silence


def test_a_frame_sent_inline_is_read_back_whatever_its_field() -> None:
    from runcomfy_mcp.sandbox.video import first_image

    uri = "data:image/png;base64," + base64.b64encode(png(sample())).decode()
    assert first_image({"image_url": uri}) == first_image({"images": [uri]}) == png(sample())
