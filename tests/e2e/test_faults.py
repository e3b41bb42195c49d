"""Faults upstream: the job is neither lost nor paid twice, and the message says what happened."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from conftest import TOKEN, ClientFactory
from faults import FaultyTransport
from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from mcp import Client
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"


@pytest.fixture
def faults() -> FaultyTransport:
    return FaultyTransport()


@pytest.fixture
async def faulty(connect: ClientFactory, api_url: str, faults: FaultyTransport) -> AsyncIterator[Client]:
    settings = Settings(api_token=TOKEN, base_url=api_url, request_timeout_s=0.3, connect_timeout_s=0.2)
    async with connect(settings, faults) as client:
        yield client


async def submit(client: Client) -> str:
    result = await client.call_tool(LITE, SEEDANCE_LITE_ARGS)
    assert not result.is_error, text_of(result)
    return str(structured(result)["request_id"])


async def test_status_survives_503s(faulty: Client, faults: FaultyTransport, simulator: Simulator) -> None:
    request_id = await submit(faulty)
    faults.add("GET", "/status", "503", times=2)
    result = await faulty.call_tool("get_status", {"request_id": request_id})
    assert not result.is_error and structured(result)["status"] == "in_queue"
    assert faults.fired == ["503", "503"] and simulator.calls.count("GET", "/status") == 1


async def test_result_honours_retry_after(faulty: Client, faults: FaultyTransport) -> None:
    request_id = await submit(faulty)
    faults.add("GET", "/result", "429", times=1, retry_after="0")
    result = await faulty.call_tool("get_result", {"request_id": request_id})
    assert not result.is_error and faults.fired == ["429"]


async def test_persistent_failure_ends_in_a_clear_error(faulty: Client, faults: FaultyTransport) -> None:
    request_id = await submit(faulty)
    faults.add("GET", "/status", "503", times=10)
    result = await faulty.call_tool("get_status", {"request_id": request_id})
    assert result.is_error and "having trouble" in text_of(result) and "Tried 4 times" in text_of(result)
    assert faults.fired == ["503"] * 4


async def test_cancel_survives_a_reset(faulty: Client, faults: FaultyTransport, simulator: Simulator) -> None:
    request_id = await submit(faulty)
    faults.add("POST", "/cancel", "reset_before")
    result = await faulty.call_tool("cancel", {"request_id": request_id})
    assert structured(result)["outcome"] == "cancelled" and simulator.jobs[request_id].cancelled


@pytest.mark.parametrize("kind", ["503", "reset_after", "slow"])
async def test_a_submit_is_never_sent_twice(
    faulty: Client, faults: FaultyTransport, simulator: Simulator, kind: str
) -> None:
    faults.add("POST", "/v1/models/", kind)
    with anyio.fail_after(10):
        result = await faulty.call_tool(LITE, SEEDANCE_LITE_ARGS)
    assert result.is_error
    assert "may or may not" in text_of(result) and "Do NOT submit it again" in text_of(result)
    posts = simulator.calls.count("POST", "/v1/models/")
    assert posts == (1 if kind == "reset_after" else 0)  # the 503 and the hang never reached the simulator
    assert len(faults.fired) == 1

    # Possibly paid, so not forgotten: the attempt is in the history under a local id.
    history = structured(await faulty.call_tool("list_jobs", {}))["jobs"]
    assert [(j["status"], j["tool"]) for j in history] == [("outcome_unknown", LITE)]
    local_id = history[0]["request_id"]
    assert local_id in text_of(result)
    only_unknown = structured(await faulty.call_tool("list_jobs", {"status": "outcome_unknown"}))["jobs"]
    assert [j["request_id"] for j in only_unknown] == [local_id]
    follow = await faulty.call_tool("get_status", {"request_id": local_id})
    assert follow.is_error and "never confirmed" in text_of(follow) and "dashboard" in text_of(follow)
    assert simulator.calls.count("GET", local_id) == 0  # nothing asked of RunComfy about a made-up id


@pytest.mark.parametrize("kind", ["reset_before", "pool_full"])  # refused, or no pooled connection freed up
async def test_a_submit_that_never_left_says_nothing_was_sent(
    faulty: Client, faults: FaultyTransport, simulator: Simulator, kind: str
) -> None:
    faults.add("POST", "/v1/models/", kind)
    result = await faulty.call_tool(LITE, SEEDANCE_LITE_ARGS)
    assert result.is_error and "Nothing was submitted" in text_of(result)
    assert "may or may not" not in text_of(result)
    assert simulator.calls.count("POST") == 0
    assert structured(await faulty.call_tool("list_jobs", {}))["jobs"] == []  # nothing to remember


async def test_a_hung_upstream_does_not_hold_the_call(faulty: Client, faults: FaultyTransport) -> None:
    faults.add("GET", "/status", "slow", times=10)
    with anyio.fail_after(5):
        result = await faulty.call_tool("get_status", {"request_id": "req-1"})
    assert result.is_error and "did not finish answering" in text_of(result)


@pytest.mark.parametrize(
    ("kind", "body", "words"),
    [
        ("html", None, "instead of JSON"),
        ("truncated_json", None, "instead of JSON"),
        ("json", {"request_id": "x"}, "without the expected fields"),
        ("json", {"request_id": "x", "status": "teleporting"}, "does not know"),
    ],
)
async def test_malformed_answers_read_well(
    faulty: Client, faults: FaultyTransport, kind: str, body: dict[str, object] | None, words: str
) -> None:
    faults.add("GET", "/status", kind, times=1, body=body)
    result = await faulty.call_tool("get_status", {"request_id": "req-1"})
    assert words in text_of(result)
    assert "Traceback" not in text_of(result)


async def test_an_unknown_result_status_is_reported_not_crashed_on(faulty: Client, faults: FaultyTransport) -> None:
    faults.add("GET", "/result", "json", body={"request_id": "req-1", "status": "archived", "output": None})
    result = await faulty.call_tool("get_result", {"request_id": "req-1"})
    assert "does not know" in text_of(result) and "archived" in text_of(result)


async def test_downloads_are_retried(
    faulty: Client, faults: FaultyTransport, clock: ManualClock, simulator: Simulator, tmp_path: Path
) -> None:
    request_id = await submit(faulty)
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    result = await faulty.call_tool("get_result", {"request_id": request_id, "preview": False})
    assert not result.is_error
    # The download goes through the media client, so fail the file host directly.
    simulator.video_maker_failures = 2
    saved = await faulty.call_tool("get_result", {"request_id": request_id, "download": True, "preview": False})
    assert not saved.is_error, text_of(saved)
    assert Path(structured(saved)["local_files"][0]).read_bytes() == simulator.jobs[request_id].video
    assert simulator.calls.count("GET", "/files/") == 3


async def test_the_token_is_not_in_the_job_store(faulty: Client, tmp_path: Path) -> None:
    await submit(faulty)
    database = tmp_path / "data" / "jobs.sqlite3"
    raw = database.read_bytes() + b"".join(p.read_bytes() for p in database.parent.glob("jobs.sqlite3-*"))
    assert TOKEN.encode() not in raw
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
