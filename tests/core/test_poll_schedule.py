"""wait_for_result's pacing with an injected clock: exact poll counts, no real time."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from runcomfy_mcp.core.delivery import OutputDelivery
from runcomfy_mcp.core.jobs import JobService, PollSchedule
from runcomfy_mcp.core.wallet import Wallet
from runcomfy_mcp.domain.pricing import Price
from runcomfy_mcp.domain.views import Caller, WaitResult
from runcomfy_mcp.errors import BadRequestError, RequestNotFoundError
from runcomfy_mcp.media.input_preparer import InputPreparer
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.store.sqlite import SQLiteStore
from runcomfy_mcp.upstream.client import ResultResponse, StatusResponse

pytestmark = pytest.mark.anyio


EPOCH = 1_800_000_000.0  # the wall clock when a test's fake time is 0


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class NoPrices:
    async def price(self, model_id: str) -> Price | None:
        return None


class NoBalance:
    async def balance_usd(self, token: str | None) -> float:
        raise AssertionError("a wait reads no balance")


class ScriptedClient:
    """A job queued until `running_at` seconds, generated until `done_at`; each answer takes `latency` seconds of
    fake time. `result_refuses_unfinished`: a /result that answers 404 until the job has ended."""

    def __init__(
        self,
        time: FakeTime,
        done_at: float,
        latency: float = 0.0,
        running_at: float | None = None,
        result_refuses_unfinished: bool = False,
        outcome: ResultResponse | None = None,
    ) -> None:
        self.time, self.done_at, self.latency = time, done_at, latency
        self.running_at = done_at if running_at is None else running_at
        self.result_refuses_unfinished = result_refuses_unfinished
        self.result_refuses_ended = False  # /result answers an ended job with a 400
        self.outcome = outcome or ResultResponse(status="succeeded", output={"video": "https://cdn.test/v.mp4"})
        self.gone_at = float("inf")  # from then on RunComfy no longer knows the job: both answers are 404
        self.poll_times: list[float] = []  # /status
        self.result_times: list[float] = []  # /result, whatever it answered
        self.cancels = 0  # a wait never cancels the job it follows

    @property
    def results(self) -> int:
        return len(self.result_times)

    def _state(self) -> str:
        self.time.now += self.latency
        if self.time.now >= self.done_at:
            return "completed"
        return "in_progress" if self.time.now >= self.running_at else "in_queue"

    async def status(self, request_id: str, *, token: str | None = None) -> StatusResponse:
        self.poll_times.append(round(self.time.now, 3))
        if self.time.now >= self.gone_at:
            raise RequestNotFoundError("no such job", status_code=404, error_code=None, upstream_message=None)
        state = self._state()
        return StatusResponse(request_id=request_id, status=state, queue_position=1 if state == "in_queue" else None)

    async def cancel(self, request_id: str, *, token: str | None = None) -> None:
        self.cancels += 1

    async def result(self, request_id: str, *, include_cost: bool = False, token: str | None = None) -> ResultResponse:
        self.result_times.append(round(self.time.now, 3))
        state = self._state()
        if state != "completed":
            if self.result_refuses_unfinished or self.time.now >= self.gone_at:
                raise RequestNotFoundError("no result yet", status_code=404, error_code=None, upstream_message=None)
            return ResultResponse(request_id=request_id, status=state)
        if self.result_refuses_ended:
            raise BadRequestError("no result", status_code=400, error_code=None, upstream_message=None)
        return self.outcome.model_copy(update={"request_id": request_id})


def job_service(tmp_path: Path, client: ScriptedClient, sleep: Callable[[float], Awaitable[None]]) -> JobService:
    """A JobService paced by the client's fake time."""
    time = client.time
    settings = Settings(output_dir=tmp_path / "out", previews=False)
    return JobService(
        cast(Any, client),  # the client's two calls a wait makes, scripted
        InputPreparer(cast(Any, None)),  # a wait prepares no inputs
        store=SQLiteStore(tmp_path / "jobs.sqlite3"),
        delivery=OutputDelivery(cast(Any, None), None),  # nothing is downloaded or previewed unless asked
        schedule=PollSchedule(initial_s=1.0, max_s=10.0),
        wallet=Wallet(settings.spend_limits(), NoPrices(), NoBalance()),
        clock=time,
        sleep=sleep,
        wall_clock=lambda: EPOCH + time.now,
    )


async def wait(tmp_path: Path, client: ScriptedClient, timeout_s: float) -> WaitResult:
    """One wait_for_result, its sleeps passing at once in fake time."""
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        return await jobs.wait_for_result("req-1", timeout_s=timeout_s)
    finally:
        jobs.store.close()


async def submitted(jobs: JobService, tmp_path: Path, at: float, request_id: str = "req-1") -> None:
    """A job in the history, submitted at `at` (on the wall clock the tests hand in)."""
    await jobs.store.record_submission(request_id=request_id, model_id="a/b", tool="t", arguments={})
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as history:
        history.execute("UPDATE jobs SET submitted_at = ? WHERE request_id = ?", (at, request_id))


def test_the_schedule_backs_off_to_its_ceiling() -> None:
    delays = PollSchedule(initial_s=1.0, max_s=10.0).delays()
    assert [round(next(delays), 3) for _ in range(8)] == [1.0, 1.5, 2.25, 3.375, 5.062, 7.594, 10.0, 10.0]


async def test_a_thirty_second_job_takes_eight_status_polls_and_one_result(tmp_path: Path) -> None:
    client = ScriptedClient(FakeTime(), done_at=30)
    result = await wait(tmp_path, client, timeout_s=600)
    assert client.poll_times == [0, 1, 2.5, 4.75, 8.125, 13.188, 20.781, 30.781]
    assert client.results == 1 and not result.timed_out and result.video_urls == ["https://cdn.test/v.mp4"]


async def test_a_wait_ends_at_its_timeout_with_one_last_look(tmp_path: Path) -> None:
    client = ScriptedClient(FakeTime(), done_at=1e9)
    result = await wait(tmp_path, client, timeout_s=10)
    assert client.poll_times == [0, 1, 2.5, 4.75, 8.125, 10]
    assert result.timed_out and result.waited_s == 10 and client.results == 0


async def test_slow_answers_do_not_stretch_the_schedule(tmp_path: Path) -> None:
    client = ScriptedClient(FakeTime(), done_at=1e9, latency=0.4)
    await wait(tmp_path, client, timeout_s=10)
    assert client.poll_times[:5] == [0, 1, 2.5, 4.75, 8.125]  # due at fixed times from the start


async def test_cancelling_a_wait_stops_its_polls_and_leaves_the_job(tmp_path: Path) -> None:
    client = ScriptedClient(FakeTime(), done_at=1e9)
    asleep = anyio.Event()

    async def sleep_until_cancelled(seconds: float) -> None:
        asleep.set()
        await anyio.sleep_forever()

    jobs = job_service(tmp_path, client, sleep_until_cancelled)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: jobs.wait_for_result("req-1", timeout_s=600))
            await asleep.wait()  # the first poll was made, and the wait sleeps until the next
            tasks.cancel_scope.cancel()
        await anyio.wait_all_tasks_blocked()  # a poller left running would poll now: its sleep is over
        assert client.poll_times == [0] and client.results == 0 and client.cancels == 0
    finally:
        jobs.store.close()


async def test_a_wait_on_an_old_job_polls_at_the_old_jobs_pace_and_times(tmp_path: Path) -> None:
    """The schedule counts from the job's submission: a wait begun on a job submitted 35 s ago does not poll every
    second again (a thousand waits begun together on older jobs would otherwise flood RunComfy), and looks at the
    schedule's own times, as one wait that had followed the job from its start would."""
    client = ScriptedClient(FakeTime(), done_at=40)
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        await submitted(jobs, tmp_path, EPOCH - 35)
        result = await jobs.wait_for_result("req-1", timeout_s=600)
    finally:
        jobs.store.close()
    # 35 s after submission the schedule is at its ceiling, its looks due 30.78, 40.78, 50.78… s in: the first look
    # is at once, the next at 40.78 s (5.78 s later), then every 10 s.
    assert client.poll_times == [0, 5.781, 15.781, 25.781, 35.781, 45.781] and not result.timed_out


async def test_a_look_due_right_after_the_first_is_skipped(tmp_path: Path) -> None:
    """A job 30 s old: the schedule's look at 30.78 s would come under a second after the wait's first look, half
    of its 10 s pause or less, and learn nothing new; the wait looks next at 40.78 s."""
    client = ScriptedClient(FakeTime(), done_at=15)
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        await submitted(jobs, tmp_path, EPOCH - 30)
        await jobs.wait_for_result("req-1", timeout_s=600)
    finally:
        jobs.store.close()
    assert client.poll_times == [0, 10.781, 20.781]


async def test_a_job_being_generated_is_asked_at_result_so_its_end_costs_one_request(tmp_path: Path) -> None:
    """Queued, the job is asked at /status (its place in the queue is told there only); once it is generated, at
    /result, which answers with its state until the end and then with its outputs: the look that sees it end
    is the result, not a status followed by a result."""
    client = ScriptedClient(FakeTime(), running_at=2, done_at=30)
    result = await wait(tmp_path, client, timeout_s=600)
    assert client.poll_times == [0, 1, 2.5]  # queued at 0 and 1; generating at 2.5
    assert client.result_times == [4.75, 8.125, 13.188, 20.781, 30.781]  # the last one is the answer
    assert not result.timed_out and result.video_urls == ["https://cdn.test/v.mp4"]


async def test_a_runcomfy_whose_result_refuses_unfinished_jobs_is_asked_at_status(tmp_path: Path) -> None:
    """Should /result answer an unfinished job with an error rather than its state, the wait goes on at /status
    (and so do later waits), and ends with one result, as before."""
    client = ScriptedClient(FakeTime(), running_at=0, done_at=10, result_refuses_unfinished=True)
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        first = await jobs.wait_for_result("req-1", timeout_s=600)
        assert client.result_times == [1, 13.188] and client.poll_times == [0, 1, 2.5, 4.75, 8.125, 13.188]
        assert not first.timed_out and first.video_urls == ["https://cdn.test/v.mp4"]
        client.time.now, client.done_at = 100, 110
        await jobs.wait_for_result("req-2", timeout_s=600)
        assert client.result_times[2:] == [113.188]  # the later wait asked /result only once the job had ended
    finally:
        jobs.store.close()


async def test_a_job_gone_from_runcomfy_fails_its_wait_and_later_waits_still_ask_at_result(tmp_path: Path) -> None:
    """A 404 at /result for a job /status no longer knows either is the job's end, not RunComfy's way of answering:
    the wait fails with it, and the next wait on a generated job still asks /result."""
    client = ScriptedClient(FakeTime(), running_at=0, done_at=10)
    client.gone_at = 0.5  # seen generated at 0, gone by the next look
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        with pytest.raises(RequestNotFoundError):
            await jobs.wait_for_result("req-1", timeout_s=600)
        assert client.result_times == [1] and client.poll_times == [0, 1]  # /result refused it, and so did /status
        client.gone_at, client.time.now, client.done_at = float("inf"), 100, 105
        await jobs.wait_for_result("req-2", timeout_s=600)
    finally:
        jobs.store.close()
    assert client.result_times[1:] == [101, 102.5, 104.75, 108.125]  # after its first look, at /status


async def test_an_ended_job_whose_result_is_refused_fails_its_wait_and_changes_nothing_else(tmp_path: Path) -> None:
    """A 400 at /result for a job /status says has ended is about that job (its result cannot be had), not a sign
    that /result never answers unfinished jobs: the wait fails with it, and later waits still ask /result."""
    client = ScriptedClient(FakeTime(), running_at=0, done_at=3)
    client.result_refuses_ended = True
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        with pytest.raises(BadRequestError):
            await jobs.wait_for_result("req-1", timeout_s=600)
        client.result_refuses_ended, client.time.now, client.done_at = False, 100, 105
        client.result_times.clear()
        await jobs.wait_for_result("req-2", timeout_s=600)
    finally:
        jobs.store.close()
    assert client.result_times == [101, 102.5, 104.75, 108.125]


async def test_a_failed_job_seen_at_result_is_recorded_with_its_reason_and_cost(tmp_path: Path) -> None:
    """The look that sees a generated job end is its result: a failure's reason and what RunComfy charged reach
    the answer and the history, as when the result was fetched apart."""
    failed = ResultResponse(status="failed", error="the prompt was refused", cost=0.12)
    client = ScriptedClient(FakeTime(), running_at=0, done_at=3, outcome=failed)
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        await submitted(jobs, tmp_path, EPOCH)  # submitted as the wait begins
        result = await jobs.wait_for_result("req-1", timeout_s=600, include_cost=True)
        kept = await jobs.store.get("req-1")
    finally:
        jobs.store.close()
    assert client.result_times == [1, 2.5, 4.75] and client.poll_times == [0]  # no result fetched apart
    assert result.status == "failed" and result.error == "the prompt was refused" and result.cost == 0.12
    assert kept is not None and (kept.status, kept.error, kept.cost) == ("failed", "the prompt was refused", 0.12)


async def test_a_wait_on_a_job_a_century_old_finds_its_place_in_the_schedule_at_once(tmp_path: Path) -> None:
    """Finding where a wait stands in the schedule does not walk it pause by pause: for a job submitted a century
    ago that walk would be 300 million steps, seconds of the event loop every caller shares."""
    client = ScriptedClient(FakeTime(), done_at=15)
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        century = 100 * 365.25 * 86_400
        await submitted(jobs, tmp_path, EPOCH - century)
        with anyio.fail_after(10):  # a walk would take many minutes
            await jobs.wait_for_result("req-1", timeout_s=600)
    finally:
        jobs.store.close()
    # The schedule's looks fall 20.78 s + a multiple of 10 s after the submission: the next one 0.78 s away
    # (too close to the first look, so skipped), then 10.78 s away.
    assert client.poll_times == [0, 10.781, 20.781]


async def test_a_wait_reads_the_submission_time_to_the_microsecond(tmp_path: Path) -> None:
    """The history shows whole seconds, but the schedule counts from the submission as kept: rounded down, a wait
    would look up to a second early, against pauses of one and a half seconds at first."""
    client = ScriptedClient(FakeTime(), done_at=15)
    jobs = job_service(tmp_path, client, client.time.sleep)
    try:
        await submitted(jobs, tmp_path, EPOCH - 34.5)
        await jobs.wait_for_result("req-1", timeout_s=600)
    finally:
        jobs.store.close()
    assert client.poll_times == [0, 6.281, 16.281]  # 40.78 s after the submission, 34.5 s before the wait


class StuckForOne(ScriptedClient):
    """Every status asked with `stuck_token` hangs until `release`; other callers' are answered at once."""

    def __init__(self, time: FakeTime, stuck_token: str) -> None:
        super().__init__(time, done_at=0)
        self.stuck_token, self.release, self.stuck = stuck_token, anyio.Event(), 0

    async def status(self, request_id: str, *, token: str | None = None) -> StatusResponse:
        if token == self.stuck_token:
            self.stuck += 1
            await self.release.wait()
        return await super().status(request_id, token=token)


async def test_a_callers_slow_looks_hold_only_its_own_turns(tmp_path: Path) -> None:
    """Twenty waits of one caller whose every answer hangs (a rate-limited token backing off, say): sixteen look
    at once and the rest queue behind them, and another caller's wait is answered at once all the same."""
    client = StuckForOne(FakeTime(), stuck_token="slow-token")
    jobs = job_service(tmp_path, client, client.time.sleep)
    slow, other = Caller(token="slow-token", owner="slow"), Caller(token="other-token", owner="other")
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for n in range(20):
                    group.start_soon(lambda n=n: jobs.wait_for_result(f"slow-{n}", timeout_s=60, caller=slow))
                await anyio.wait_all_tasks_blocked()
                assert client.stuck == 16  # the caller's turns are all taken; four of its waits queue for one
                done = await jobs.wait_for_result("other-1", timeout_s=60, caller=other)
                assert done.status == "succeeded" and not done.timed_out
                client.release.set()
    finally:
        jobs.store.close()
    assert jobs._look_turns == {}  # a caller's turns go when none of its waits holds or wants one
