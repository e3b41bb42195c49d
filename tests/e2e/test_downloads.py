"""Downloads over the real network stack: every byte in order while the disk writes behind the socket, and a
disk that fails mid-file says so and leaves nothing."""

from __future__ import annotations

import base64
import random
import shutil
import sys
from pathlib import Path

import anyio
import pytest

from conftest import TOKEN
from helpers import structured, text_of
from images import make_image
from mcp import Client, StdioServerParameters
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, SimulatedJob, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")

LITE = "seedance_1_0_lite_image_to_video"
ARGS = {
    "prompt": "x",
    "first_frame_image_url": "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode(),
}


def noise(job: SimulatedJob) -> bytes:
    """9 MB that differ everywhere: a byte out of place, doubled or dropped changes the file."""
    return random.Random(job.request_id).randbytes(9 * 1024 * 1024 + 12_345)


@pytest.mark.parametrize("with_length", [True, False])
async def test_a_large_download_arrives_byte_for_byte(
    api_url: str, simulator: Simulator, clock: ManualClock, tmp_path: Path, with_length: bool
) -> None:
    simulator.video_maker = noise
    simulator.stream_files = not with_length  # 64 KB pieces without a length, as a CDN may send
    settings = Settings(api_token=TOKEN, base_url=api_url, previews=False)
    # No mock transport: the guarded connections and their large reads, on loopback.
    async with open_runtime(settings, serving="stdio") as runtime, Client(build_server(runtime.tools)) as client:
        request_id = structured(await client.call_tool(LITE, ARGS))["request_id"]
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert not result.is_error, text_of(result)
    saved = Path(structured(result)["local_files"][0])
    assert saved.read_bytes() == simulator.jobs[request_id].video
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for ulimit")
async def test_a_disk_that_fills_mid_download_says_so_and_leaves_nothing(
    api_url: str, simulator: Simulator, clock: ManualClock, tmp_path: Path
) -> None:
    """The server in its own process, allowed files of 1 MB at most: the 2 MB output fails in the writer thread."""
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNCOMFY_API_TOKEN": TOKEN,
        "RUNCOMFY_BASE_URL": api_url,
        "RUNCOMFY_DATA_DIR": str(tmp_path / "data"),
        "RUNCOMFY_OUTPUT_DIR": str(tmp_path / "videos"),
        "RUNCOMFY_PREVIEWS": "0",
    }
    # Writes past the limit fail with EFBIG (File too large) instead of the signal that would end the process.
    command = f"trap '' XFSZ; ulimit -f 1024; exec {SCRIPT}"
    async with Client(StdioServerParameters(command="bash", args=["-c", command], env=env)) as client:
        request_id = structured(await client.call_tool(LITE, ARGS))["request_id"]
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        with anyio.fail_after(30):
            result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert result.is_error
    assert f"Saving the file to {tmp_path / 'videos'} failed (File too large)" in text_of(result)
    assert list((tmp_path / "videos").iterdir()) == []  # the partial file went too
