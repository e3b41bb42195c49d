"""What the server keeps on this machine (the history: prompts, inputs, URLs; the previews) is its user's alone.

Under the usual umask 022 a file is created readable by everyone: these are created owner-only anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TOKEN, ClientFactory
from helpers import SEEDANCE_LITE_ARGS, mode_of, structured
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio


async def test_the_history_and_previews_are_created_owner_only(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock, tmp_path: Path, umask_022: None
) -> None:
    data = tmp_path / "fresh" / "data"  # neither folder exists yet
    async with connect(Settings(api_token=TOKEN, base_url=video_api[0], data_dir=data)) as client:
        job = structured(await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS))
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        result = structured(await client.call_tool("wait_for_result", {"request_id": job["request_id"]}))
    assert result["preview"]["frames_at_s"]
    assert mode_of(data) == 0o700
    history = [p for p in data.iterdir() if p.name.startswith("jobs.sqlite3")]
    assert history and {p.name: mode_of(p) for p in history} == {p.name: 0o600 for p in history}
    previews = data / "previews"
    assert mode_of(previews) == 0o700
    kept = list(previews.iterdir())
    assert kept and {p.name: mode_of(p) for p in kept} == {p.name: 0o600 for p in kept}


async def test_an_existing_world_readable_history_is_made_owner_only(
    connect: ClientFactory, api_url: str, tmp_path: Path
) -> None:
    """A history written by an earlier version (0644) is tightened when it is opened."""
    data = tmp_path / "data"
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        await client.call_tool("list_jobs", {})
    for path in data.glob("jobs.sqlite3*"):
        path.chmod(0o644)
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        await client.call_tool("list_jobs", {})
    history = list(data.glob("jobs.sqlite3*"))
    assert history and {p.name: mode_of(p) for p in history} == {p.name: 0o600 for p in history}
