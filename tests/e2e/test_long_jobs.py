"""Following long jobs the way chat clients need: waiting with progress, history, downloads."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from conftest import TOKEN, ClientFactory
from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from images import make_image
from mcp import Client, StdioServerParameters
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"


async def submit(client: Client, **overrides: object) -> str:
    result = await client.call_tool(LITE, {**SEEDANCE_LITE_ARGS, **overrides})
    assert not result.is_error, text_of(result)
    return str(structured(result)["request_id"])


async def test_wait_reports_progress_until_the_video_is_ready(client: Client, clock: ManualClock) -> None:
    await submit(client)  # a job ahead in the queue
    request_id = await submit(client)
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))
        clock.advance(1.0)  # each poll, one simulated second passes

    result = await client.call_tool(
        "wait_for_result", {"request_id": request_id, "timeout_s": 60}, progress_callback=on_progress
    )
    assert not result.is_error, text_of(result)
    body = structured(result)
    assert body["status"] == "succeeded" and body["timed_out"] is False and body["video_urls"]
    messages = [m for _, m in updates]
    assert messages[0] == "in queue, position 2"
    assert any(m == "generating, 0 s" for m in messages) and any(m and m.startswith("generating, ") for m in messages)
    assert len(updates) >= QUEUE_SECONDS + RUN_SECONDS - 1
    progress = [p for p, _ in updates]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)


async def test_other_words_for_the_same_states_are_followed_to_the_end(
    client: Client, simulator: Simulator, clock: ManualClock
) -> None:
    """RunComfy's own clients meet `pending`, `processing` and `canceled` (one l): a wait must not hang on them."""
    simulator.status_words = {"in_queue": "pending", "in_progress": "processing", "cancelled": "canceled"}
    kept, dropped = await submit(client), await submit(client)
    assert structured(await client.call_tool("get_status", {"request_id": kept}))["status"] == "in_queue"
    cancelled = structured(await client.call_tool("cancel", {"request_id": dropped}))
    status = structured(await client.call_tool("get_status", {"request_id": dropped}))
    assert cancelled["outcome"] == "cancelled" and status == {**status, "status": "cancelled", "finished": True}
    clock.advance(QUEUE_SECONDS + 1)
    assert structured(await client.call_tool("get_status", {"request_id": kept}))["status"] == "in_progress"
    clock.advance(RUN_SECONDS)
    with anyio.fail_after(10):
        done = structured(await client.call_tool("wait_for_result", {"request_id": kept, "timeout_s": 5}))
    history = {j["request_id"]: j["status"] for j in structured(await client.call_tool("list_jobs", {}))["jobs"]}
    assert done["status"] == "succeeded" and history == {kept: "succeeded", dropped: "cancelled"}


async def test_wait_times_out_without_an_error(client: Client, simulator: Simulator) -> None:
    request_id = await submit(client)
    with anyio.fail_after(10):
        result = await client.call_tool("wait_for_result", {"request_id": request_id, "timeout_s": 1})
    assert not result.is_error
    body = structured(result)
    assert body["timed_out"] is True and body["status"] == "in_queue" and body["queue_position"] == 1
    assert "not an error" in text_of(result) and "wait_for_result" in text_of(result)


async def test_wait_on_a_finished_job_answers_at_once(client: Client, clock: ManualClock) -> None:
    request_id = await submit(client, prompt="a cat [fail]")
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    result = await client.call_tool("wait_for_result", {"request_id": request_id})
    assert result.is_error and "Simulated failure" in text_of(result)


async def test_wait_rejects_bad_timeouts(client: Client) -> None:
    for bad in (0, 601, "soon"):
        result = await client.call_tool("wait_for_result", {"request_id": "abc", "timeout_s": bad})
        assert result.is_error and "timeout_s" in text_of(result)


async def test_cancelling_the_wait_stops_polling_and_leaves_the_job(client: Client, simulator: Simulator) -> None:
    request_id = await submit(client)
    first_poll = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first_poll.set()

    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            await client.call_tool(
                "wait_for_result", {"request_id": request_id, "timeout_s": 60}, progress_callback=on_progress
            )

        tg.start_soon(wait)
        with anyio.fail_after(5):
            await first_poll.wait()
        tg.cancel_scope.cancel()
    # That no poll follows is shown with fake time in tests/core/test_poll_schedule.py; here, the job lives on.
    assert simulator.jobs[request_id].cancelled is False
    status = await client.call_tool("get_status", {"request_id": request_id})
    assert structured(status)["status"] == "in_queue"


async def test_history_survives_a_restart(connect: ClientFactory, api_url: str, clock: ManualClock) -> None:
    settings = Settings(api_token=TOKEN, base_url=api_url)
    data_uri = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
    async with connect(settings) as client:
        first = await submit(client, first_frame_image_url=data_uri)
        second = await submit(client)
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        await client.call_tool("get_result", {"request_id": second, "include_cost": True})
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        listing = structured(await client.call_tool("list_jobs", {}))
        jobs = {job["request_id"]: job for job in listing["jobs"]}
        assert list(jobs) == [second, first]  # newest first
        assert jobs[second]["status"] == "succeeded" and jobs[second]["video_urls"] and jobs[second]["cost"] == 0.09
        assert jobs[first]["status"] == "in_queue"
        stored_image = jobs[first]["arguments"]["first_frame_image_url"]
        assert stored_image.startswith("data:image/png;base64,<") and "sha256:" in stored_image
        assert len(stored_image) < 120
        only_done = structured(await client.call_tool("list_jobs", {"status": "succeeded"}))
        assert [j["request_id"] for j in only_done["jobs"]] == [second]


async def test_jobs_and_models_are_resources(client: Client) -> None:
    request_id = await submit(client)
    templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == [
        "runcomfy://jobs/{request_id}",
        "runcomfy://jobs/{request_id}/frames/{position}",
        "runcomfy://films/{film_id}",
    ]
    uris = [str(r.uri) for r in (await client.list_resources()).resources]
    assert f"runcomfy://jobs/{request_id}" in uris
    assert sum(1 for u in uris if u.startswith("runcomfy://models/")) == 4
    job = await client.read_resource(f"runcomfy://jobs/{request_id}")
    assert json.loads(job.contents[0].text)["tool"] == LITE  # type: ignore[union-attr]
    schema = await client.read_resource("runcomfy://models/dreamina_3_0_image_to_video/schema")
    body = json.loads(schema.contents[0].text)  # type: ignore[union-attr]
    assert body["model_id"] == "bytedance/dreamina-3-0/image-to-video"
    assert body["upstream_input_schema"]["properties"]["image_urls"]["validations"]


async def test_download_saves_the_exact_bytes_once(
    client: Client, clock: ManualClock, simulator: Simulator, tmp_path: Path
) -> None:
    request_id = await submit(client)
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    first = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert not first.is_error, text_of(first)
    saved = Path(structured(first)["local_files"][0])
    assert saved == tmp_path / "videos" / f"{request_id}.mp4"
    assert saved.read_bytes() == simulator.jobs[request_id].video
    links = [c for c in first.content if c.type == "resource_link"]
    assert [link.uri for link in links] == [saved.as_uri()]  # type: ignore[union-attr]
    assert str(saved) in text_of(first)
    again = await client.call_tool("wait_for_result", {"request_id": request_id, "download": True})
    assert structured(again)["local_files"] == [str(saved)]
    assert simulator.calls.count("GET", "/files/") == 1
    listing = structured(await client.call_tool("list_jobs", {}))
    assert listing["jobs"][0]["local_files"] == [str(saved)]


async def test_an_interrupted_download_leaves_no_file(connect: ClientFactory, tmp_path: Path) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "request_id": "req-1",
                "status": "succeeded",
                "output": {"video": "https://images.example.com/broken.mp4"},
            },
        )

    async with connect(Settings(api_token=TOKEN, base_url="https://api.test"), httpx.MockTransport(api)) as client:
        result = await client.call_tool("get_result", {"request_id": "req-1", "download": True})
    assert result.is_error and "interrupted" in text_of(result) and "nothing was saved" in text_of(result)
    videos = tmp_path / "videos"
    assert not videos.exists() or list(videos.iterdir()) == []


async def test_two_server_processes_share_the_history(api_url: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env |= {
        "RUNCOMFY_API_TOKEN": TOKEN,
        "RUNCOMFY_BASE_URL": api_url,
        "RUNCOMFY_DATA_DIR": str(tmp_path / "shared"),
        "RUNCOMFY_INPUT_ROOTS": str(tmp_path),
    }
    image = tmp_path / "cat.png"
    image.write_bytes(make_image(640, 480))
    script = str(Path(sys.executable).with_name("runcomfy-mcp"))
    submitted: list[str] = []

    async def window(n: int) -> None:
        async with Client(StdioServerParameters(command=script, env=env)) as client:
            for _ in range(n):
                result = await client.call_tool(LITE, {"prompt": "x", "first_frame_image_url": str(image)})
                submitted.append(structured(result)["request_id"])

    async with anyio.create_task_group() as tg:
        tg.start_soon(window, 8)
        tg.start_soon(window, 8)
    async with Client(StdioServerParameters(command=script, env=env)) as client:
        listing = structured(await client.call_tool("list_jobs", {"limit": 50}))
    assert sorted(j["request_id"] for j in listing["jobs"]) == sorted(submitted)
    assert len(submitted) == 16


async def test_downloads_cannot_leave_the_output_folder(connect: ClientFactory, api_url: str, tmp_path: Path) -> None:
    hostile = f"{api_url}/files/..%2F..%2F..%2Fetc%2Fcron.d%2Fevil.sh"

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"request_id": "req-7", "status": "succeeded", "output": {"video": hostile}})

    async with connect(Settings(api_token=TOKEN, base_url="https://api.test"), httpx.MockTransport(api)) as client:
        result = await client.call_tool("get_result", {"request_id": "req-7", "download": True})
    # The simulator has no such file, so the download fails; what matters is where it would have gone.
    assert result.is_error and "HTTP 404" in text_of(result)
    assert not (tmp_path / "etc").exists() and not any(tmp_path.rglob("evil.sh"))
    from runcomfy_mcp.media.downloads import output_stem

    assert output_stem("req-7", 0, 1) == "req-7"
    with pytest.raises(Exception, match="not a RunComfy request id"):
        output_stem("../../x", 0, 1)


async def test_a_later_status_check_keeps_the_results_outcome(client: Client, clock: ManualClock) -> None:
    request_id = await submit(client)
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    await client.call_tool("get_result", {"request_id": request_id})
    await client.call_tool("get_status", {"request_id": request_id})  # says 'completed'
    jobs = structured(await client.call_tool("list_jobs", {}))["jobs"]
    assert jobs[0]["status"] == "succeeded"
