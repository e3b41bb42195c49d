"""Hostile outputs: files made to exhaust whoever previews them still give the caller the job's URLs.

Each attack from the security review, served by a file host on loopback as a job's output: a small
MOV of 8192×8192 frames, a clip with one keyframe, PNGs of 20000×20000 and 13000×13000 that are
small on disk. The result always carries its URLs; a file that cannot be shown gets a note, and the
verdict is kept, so asking again fetches nothing. (Memory and time per preview: benchmarks/run.py preview.)
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import mcp_types as types
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conftest import TOKEN
from helpers import structured, text_of
from hostile_media import black_png, write_video
from images import make_image
from mcp import Client
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"
FLUX = "blackforestlabs/flux-2/flash/text-to-image"
PNG_URI = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()


@pytest.fixture(scope="session")
def huge_frames_mov(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """~200 KB on disk; each decoded frame would be 96 MB (the review's file took 2.3 GB to preview)."""
    return write_video(tmp_path_factory.mktemp("hostile") / "huge.mov", 8192, 8192, frames=1, fps=2).read_bytes()


@pytest.fixture(scope="session")
def one_keyframe_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """30 s at 24 fps with a single keyframe: every frame depends on the first."""
    path = tmp_path_factory.mktemp("hostile") / "one-keyframe.mp4"
    return write_video(path, 640, 360, frames=720, fps=24, keyframe_every=720).read_bytes()


class FileHost:
    """Serves one file per kind of output (by the URL's suffix) and counts the fetches."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fetches: list[str] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/files/{name}", self._file)])

    async def _file(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.fetches.append(name)
        return Response(self.files[name.rsplit(".", 1)[-1]], media_type="application/octet-stream")


@asynccontextmanager
async def outputs_served(clock: ManualClock, **files: bytes) -> AsyncIterator[tuple[Client, FileHost]]:
    """A server whose jobs' outputs are `files` (keyed by suffix: mp4, png), from a host of their own."""
    simulator, host = Simulator(token=TOKEN, clock=clock), FileHost(files)
    async with serve_on_loopback(simulator.app()) as api, serve_on_loopback(host.app()) as file_host:
        simulator.base_url, simulator.file_base_url = api, file_host
        settings = Settings(api_token=TOKEN, base_url=api)
        async with open_runtime(settings, serving="stdio") as runtime, Client(build_server(runtime.tools)) as client:
            yield client, host


async def finished_video_job(client: Client, clock: ManualClock) -> str:
    job = structured(await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": PNG_URI}))
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    return str(job["request_id"])


async def finished_image_job(client: Client, clock: ManualClock) -> str:
    job = structured(await client.call_tool("run_model", {"model_id": FLUX, "input": {"prompt": "a kite"}}))
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    return str(job["request_id"])


def has_picture(result: types.CallToolResult) -> bool:
    return any(isinstance(block, types.ImageContent) for block in result.content)


def assert_urls_and_note(result: types.CallToolResult, note: str) -> None:
    """What the caller needs is there — the job's outputs — and the missing preview is explained."""
    assert not result.is_error, text_of(result)
    answer = structured(result)
    assert answer["status"] == "succeeded" and answer["outputs"] and answer["outputs"][0]["url"].startswith("http")
    assert f"No preview: {note}" in text_of(result), text_of(result)
    assert not has_picture(result) and answer["preview"] is None


async def test_a_mov_of_8192_square_frames_is_refused_from_its_header(
    clock: ManualClock, huge_frames_mov: bytes
) -> None:
    async with outputs_served(clock, mp4=huge_frames_mov) as (client, host):
        request_id = await finished_video_job(client, clock)
        waited = await client.call_tool("wait_for_result", {"request_id": request_id})
        again = await client.call_tool("get_result", {"request_id": request_id})
    assert_urls_and_note(waited, "the video's frames are 8192×8192 (yuv420p), more than a preview decodes")
    assert structured(waited)["video_urls"] and "download it to see it" in text_of(waited)
    assert_urls_and_note(again, "the video's frames are 8192×8192")
    assert len(host.fetches) == 1  # the verdict is kept: asking again fetches nothing


@pytest.mark.parametrize("side", [20000, 13000])
async def test_a_huge_png_small_on_disk_is_refused_from_its_header(clock: ManualClock, side: int) -> None:
    png = black_png(side, side)
    assert len(png) < 1_500_000  # the attack: ~1 MB that would decode to 1.6 GB (20000²) or 680 MB (13000²)
    async with outputs_served(clock, png=png) as (client, host):
        request_id = await finished_image_job(client, clock)
        first = await client.call_tool("get_result", {"request_id": request_id})
        again = await client.call_tool("get_result", {"request_id": request_id})
    megapixels = side * side // 1_000_000
    assert_urls_and_note(first, f"the image is {side}×{side} ({megapixels} megapixels), more than a preview decodes")
    assert_urls_and_note(again, f"the image is {side}×{side}")
    assert len(host.fetches) == 1


async def test_a_clip_with_one_keyframe_is_shown_across_its_whole_length(
    clock: ManualClock, one_keyframe_mp4: bytes
) -> None:
    async with outputs_served(clock, mp4=one_keyframe_mp4) as (client, host):
        request_id = await finished_video_job(client, clock)
        result = await client.call_tool("get_result", {"request_id": request_id})
    assert not result.is_error and has_picture(result), text_of(result)
    frames = structured(result)["preview"]["frames_at_s"]
    assert len(frames) == 6 and frames == sorted(frames) and frames[0] < 3 and frames[-1] > 26
    assert "Preview: 6 frames" in text_of(result) and "decoding stopped" not in text_of(result)
    assert len(host.fetches) == 1


async def test_the_fetched_copy_is_removed_and_the_preview_kept(clock: ManualClock, one_keyframe_mp4: bytes) -> None:
    async with outputs_served(clock, mp4=one_keyframe_mp4) as (client, _):
        request_id = await finished_video_job(client, clock)
        await client.call_tool("get_result", {"request_id": request_id})
    folder = Path(Settings().data_dir).expanduser() / "previews"
    assert (folder / f"{request_id}.jpg").is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".fetch-")]  # the fetched copy is gone
