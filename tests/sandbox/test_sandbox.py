"""Sandbox mode and the demo: the whole flow offline, with a real playable MP4 at the end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import av
import httpx
import pytest

from conftest import TOKEN
from helpers import structured, text_of
from images import make_image
from mcp import Client, StdioServerParameters
from runcomfy_mcp.sandbox.simulator import ManualClock, Simulator

pytestmark = pytest.mark.anyio

SCRIPT = str(Path(sys.executable).with_name("runcomfy-mcp"))


def sandbox_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_API_TOKEN"}
    return env | {"RUNCOMFY_SANDBOX_TIME_SCALE": "0.02", "RUNCOMFY_OUTPUT_DIR": str(tmp_path / "videos")}


def video_facts(path: Path) -> tuple[float, int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return (
            float(container.duration or 0) / 1_000_000,
            stream.codec_context.width,
            stream.codec_context.height,
            frames,
        )


async def test_sandbox_runs_a_job_to_a_playable_mp4_without_a_token(tmp_path: Path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(make_image(800, 600, "jpg"))
    params = StdioServerParameters(command=SCRIPT, args=["--sandbox"], env=sandbox_env(tmp_path))
    async with Client(params) as client:
        submitted = await client.call_tool(
            "seedance_v1_5_pro_image_to_video",
            {"prompt": "a slow zoom", "first_frame_image_url": str(image), "duration": 4},
        )
        assert not submitted.is_error, text_of(submitted)
        assert text_of(submitted).startswith("SANDBOX: simulated result")
        with anyio.fail_after(30):
            done = await client.call_tool(
                "wait_for_result",
                {"request_id": structured(submitted)["request_id"], "timeout_s": 30, "download": True},
            )
        assert not done.is_error, text_of(done)
        assert "SANDBOX" in text_of(done)
        offline = await client.call_tool(
            "seedance_v1_5_pro_image_to_video",
            {"prompt": "x", "first_frame_image_url": "https://images.example.com/a.png"},
        )
        assert (
            offline.is_error and "sandbox mode works offline" in text_of(offline) and "resolve" not in text_of(offline)
        )
    path = Path(structured(done)["local_files"][0])
    seconds, width, height, frames = video_facts(path)
    assert abs(seconds - 4) < 0.5 and frames >= 40
    assert (width, height) == (640, 480)


@pytest.mark.timeout(150)
async def test_the_demo_command_makes_a_three_shot_film(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path)
    env["RUNCOMFY_SANDBOX_TIME_SCALE"] = "0.05"
    with anyio.fail_after(120):
        done = await anyio.run_process([SCRIPT, "demo"], env=env, cwd=tmp_path, check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()
    film = tmp_path / "videos" / "demo-film.mp4"
    shots = sorted(p for p in (tmp_path / "videos").glob("sim-*.mp4"))
    assert len(shots) == 3 and f"path:     {film}" in output and f"The film: {film}" in output
    assert "shot 1 is on disk" in output and "(5.0 s, 640×360)" in output and "Estimated cost: $0.09" in output
    # shot 2 from a catalog model, shot 3 from a bundled one, each starting on the previous one's last frame
    assert "find_models(" in output and "describe_model(" in output and 'run_model({"model_id": "kling/' in output
    assert "/frames/last" in output and "Shot 3 continues shot 2" in output
    assert 'run_model({"model_id": "minimax/music' in output
    seconds, width, height, frames = video_facts(film)
    assert abs(seconds - 14.0) < 0.2 and (width, height) == (640, 360) and frames == 168
    with av.open(str(film)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    assert "duration: 14.0 s (640×360, 12 fps)" in output and "compose_video(" in output


async def test_the_simulator_speaks_the_api(simulator: Simulator, api_url: str, clock: ManualClock) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    model = f"{api_url}/v1/models/bytedance/dreamina-3-0/image-to-video"
    async with httpx.AsyncClient(headers=auth) as http:
        ids = [(await http.post(model, json={"prompt": str(i)})).json()["request_id"] for i in range(3)]
        positions = [(await http.get(f"{api_url}/v1/requests/{i}/status")).json()["queue_position"] for i in ids]
        assert positions == [1, 2, 3]
        cancel = await http.post(f"{api_url}/v1/requests/{ids[0]}/cancel")
        assert cancel.status_code == 202 and cancel.json()["outcome"] == "cancelled"
        assert (await http.get(f"{api_url}/v1/requests/{ids[2]}/status")).json()["queue_position"] == 2
        clock.advance(3.5)
        late = await http.post(f"{api_url}/v1/requests/{ids[1]}/cancel")
        assert late.json()["outcome"] == "not_cancellable"

        unknown = await http.post(f"{api_url}/v1/models/acme/nope", json={})
        assert unknown.status_code == 404 and "not found" in unknown.json()["detail"]
        malformed = await http.post(model, content=b"[not json")
        assert malformed.status_code == 400 and "error_message" in malformed.json()
        missing = await http.get(f"{api_url}/v1/requests/unknown/result")
        assert missing.status_code == 404 and missing.json()["error_code"] == "404001"
    async with httpx.AsyncClient(headers={"Authorization": "Bearer wrong"}) as http:
        denied = await http.post(model, json={})
        assert denied.status_code == 401 and denied.json()["error_code"] == "400004"
