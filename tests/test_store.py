"""The SQLite job store on its own: partitions, updates, filters, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from runcomfy_mcp.store.sqlite import JobStore

pytestmark = pytest.mark.anyio


async def test_each_owner_sees_only_their_own_jobs(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    try:
        await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={}, owner="alice")
        await store.record_submission(request_id="r2", model_id="a/b", tool="t", arguments={}, owner="bob")
        assert [j.request_id for j in await store.list(owner="alice")] == ["r1"]
        assert await store.get("r2", "alice") is None and (await store.get("r2", "bob")) is not None
    finally:
        store.close()


async def test_updates_keep_what_they_do_not_change_and_outputs_skip_echoed_inputs(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    image = "https://cdn.example/in.png"
    try:
        await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={"image_url": image})
        output = {"video": "https://cdn.example/out.mp4", "image": image}
        await store.update("r1", status="succeeded", video_urls=["https://cdn.example/out.mp4"], output=output)
        await store.update("r1", status="completed")  # a later status poll says less than the result did
        record = await store.get("r1")
        assert record is not None and record.status == "succeeded"
        assert record.video_urls == ["https://cdn.example/out.mp4"]
        assert [(o.kind, o.url) for o in record.outputs] == [("video", "https://cdn.example/out.mp4")]
        assert [j.request_id for j in await store.list(status="succeeded")] == ["r1"]
        assert await store.list(status="failed") == []
    finally:
        store.close()


async def test_the_history_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    await store.record_submission(request_id="r1", model_id="a/b", tool="t", arguments={"prompt": "x"})
    store.close()
    again = JobStore(path)
    try:
        record = await again.get("r1")
        assert record is not None and record.arguments == {"prompt": "x"} and record.status == "in_queue"
    finally:
        again.close()
