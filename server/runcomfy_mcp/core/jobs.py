"""The core: submit a job for a model spec, follow it, cancel it. No MCP and no HTTP details here."""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from runcomfy_mcp.core.request_ids import check_request_id
from runcomfy_mcp.core.specs import ToolSpec
from runcomfy_mcp.core.validation import ArgumentChecker
from runcomfy_mcp.core.views import (
    FINISHED_STATUSES,
    LOCAL_CALLER,
    OUTCOME_UNKNOWN,
    UNCONFIRMED_PREFIX,
    Caller,
    CancelOutcome,
    JobList,
    JobRecord,
    JobResult,
    JobStatus,
    ProgressReporter,
    SubmittedJob,
    WaitResult,
)
from runcomfy_mcp.errors import (
    InvalidArgumentsError,
    RequestNotFoundError,
    SubmitOutcomeUnknownError,
    UnconfirmedSubmissionError,
    upstream_reason,
)
from runcomfy_mcp.media.downloads import Downloader
from runcomfy_mcp.media.inputs import InputPreparer
from runcomfy_mcp.store.sqlite import JobStore
from runcomfy_mcp.upstream.client import RunComfyClient

logger = logging.getLogger(__name__)


def video_urls(output: Mapping[str, Any] | None) -> list[str]:
    """Every URL under `output.video` / `output.videos`, in order, without repeats."""
    if not output:
        return []
    found: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            if value not in found:
                found.append(value)
        elif isinstance(value, Mapping):
            collect(value.get("url"))
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(output.get("video"))
    collect(output.get("videos"))
    return found


def failure_reason(error: Any, failure: Any) -> str:
    """Why a job failed, from a result's `error` (string or object) or `failure_reason`."""
    reason = upstream_reason({"error": error, "failure_reason": failure})
    if reason:
        return reason
    shapeless = next((v for v in (error, failure) if isinstance(v, Mapping) and v), None)
    return str(dict(shapeless)) if shapeless else "RunComfy gave no reason."


def advice_for(spec: ToolSpec, arguments: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    for item in spec.advice:
        value = arguments.get(item.field)
        if value is None:
            continue
        cond = item.when
        if (cond.max_length is not None and isinstance(value, str) and len(value) > cond.max_length) or (
            cond.other_field is not None and arguments.get(cond.other_field) == cond.equals
        ):
            notes.append(item.message)
    return notes


@dataclass(frozen=True)
class PollSchedule:
    """Quick at first, then backing off: a ten-minute job costs a few dozen status requests."""

    initial_s: float = 1.0
    factor: float = 1.5
    max_s: float = 10.0

    def delays(self) -> Iterable[float]:
        delay = self.initial_s
        while True:
            yield delay
            delay = min(self.max_s, delay * self.factor)


async def _no_progress(progress: float, message: str) -> None:
    return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


class JobService:
    """Submits and follows RunComfy jobs for the loaded tool specs, and remembers them."""

    def __init__(
        self,
        client: RunComfyClient,
        specs: Iterable[ToolSpec],
        inputs: InputPreparer,
        store: JobStore,
        downloader: Downloader,
        schedule: PollSchedule | None = None,
    ) -> None:
        self.client = client
        self.inputs = inputs
        self.store = store
        self.downloader = downloader
        self.schedule = schedule or PollSchedule()
        self.specs = {spec.tool_name: spec for spec in specs}
        self._checkers = {name: ArgumentChecker(spec) for name, spec in self.specs.items()}
        self._recorded_status: dict[str, str] = {}  # polls mostly repeat a status: write only changes

    async def _remember(self, work: Awaitable[None]) -> None:
        """History is a convenience: a disk problem is logged, never allowed to fail a paid call."""
        try:
            await work
        except (sqlite3.Error, OSError):
            logger.exception("could not update the job history")

    async def prepare_arguments(
        self, tool_name: str, arguments: Mapping[str, Any] | None, caller: Caller = LOCAL_CALLER
    ) -> tuple[dict[str, Any], list[str]]:
        """What to send for a call, and notes for the assistant; raises InvalidArgumentsError with every problem."""
        spec = self.specs[tool_name]
        checked = self._checkers[tool_name].check(arguments)
        prepared = await self.inputs.prepare(
            spec, checked.arguments, skip=checked.fields_with_problems, owner=caller.owner
        )
        problems = checked.problems + prepared.problems
        if problems:
            raise InvalidArgumentsError(tool_name, problems)
        return prepared.arguments, prepared.notes + advice_for(spec, checked.arguments)

    async def _authorize(self, request_id: str, caller: Caller) -> str:
        check_request_id(request_id)
        if not (caller.private or request_id.startswith(UNCONFIRMED_PREFIX)):
            return request_id  # the local user's everyday call reads no history
        record = await self.store.get(request_id, caller.owner)
        if record is not None and record.status == OUTCOME_UNKNOWN:
            raise UnconfirmedSubmissionError(request_id, record.model_id, record.submitted_at)
        if record is None and caller.private:
            raise RequestNotFoundError(
                f"There is no job {request_id} in your history on this server. Use list_jobs to see your jobs; "
                "jobs submitted by other callers of this server cannot be seen or touched.",
                status_code=404,
                error_code=None,
                upstream_message=None,
            )
        return request_id

    async def submit_job(
        self, tool_name: str, arguments: Mapping[str, Any] | None, *, caller: Caller = LOCAL_CALLER
    ) -> SubmittedJob:
        spec = self.specs[tool_name]
        to_send, notes = await self.prepare_arguments(tool_name, arguments, caller)
        try:
            answer = await self.client.submit(spec.model_id, to_send, token=caller.token)
        except SubmitOutcomeUnknownError as exc:
            # Possibly a paid job: keep it findable in list_jobs even though RunComfy gave no id.
            local_id = UNCONFIRMED_PREFIX + secrets.token_hex(8)
            await self._record_submission(local_id, spec, to_send, caller, status=OUTCOME_UNKNOWN)
            raise SubmitOutcomeUnknownError(
                f"{exc.message} This attempt is kept in list_jobs as {local_id} (status '{OUTCOME_UNKNOWN}')."
            ) from None
        await self._record_submission(answer.request_id, spec, to_send, caller)
        return SubmittedJob(
            request_id=answer.request_id, model_id=spec.model_id, tool=tool_name, status="in_queue", notes=notes
        )

    async def _record_submission(
        self, request_id: str, spec: ToolSpec, sent: Mapping[str, Any], caller: Caller, status: str = "in_queue"
    ) -> None:
        await self._remember(
            self.store.record_submission(
                request_id=request_id,
                model_id=spec.model_id,
                tool=spec.tool_name,
                arguments=sent,
                owner=caller.owner,
                status=status,
            )
        )

    async def get_status(self, request_id: str, *, caller: Caller = LOCAL_CALLER) -> JobStatus:
        return await self._status(await self._authorize(request_id, caller), caller)

    async def get_result(
        self, request_id: str, *, include_cost: bool = False, download: bool = False, caller: Caller = LOCAL_CALLER
    ) -> JobResult:
        return await self._result(await self._authorize(request_id, caller), caller, include_cost, download)

    async def _status(self, request_id: str, caller: Caller) -> JobStatus:
        answer = await self.client.status(request_id, token=caller.token)
        view = JobStatus(
            request_id=answer.request_id or request_id,
            status=answer.status,
            queue_position=answer.queue_position if answer.status == "in_queue" else None,
            finished=answer.status in FINISHED_STATUSES,
        )
        if self._recorded_status.get(request_id) != answer.status:
            await self._remember(self.store.update(request_id, status=answer.status))
            self._recorded_status[request_id] = answer.status
        return view

    async def _result(self, request_id: str, caller: Caller, include_cost: bool, download: bool) -> JobResult:
        answer = await self.client.result(request_id, include_cost=include_cost, token=caller.token)
        failed = answer.status == "failed"
        view = JobResult(
            request_id=answer.request_id or request_id,
            status=answer.status,
            output=answer.output,
            video_urls=video_urls(answer.output),
            error=failure_reason(answer.error, answer.failure_reason) if failed else None,
            cost=answer.cost,
        )
        await self._remember(
            self.store.update(
                request_id,
                status=view.status,
                video_urls=view.video_urls,
                output=view.output,
                error=view.error,
                cost=view.cost,
            )
        )
        if download and view.status == "succeeded" and view.video_urls:
            paths = await self.downloader.save_all(request_id, view.video_urls)
            if self.downloader.reveal_paths:
                saved = view.local_files = [str(p) for p in paths]
            else:  # a remote caller: the server's disk is not theirs, so no path of it is handed out
                saved = [p.name for p in paths]
                view.notes.append(
                    f"Saved on the server as {', '.join(saved)}, not on your machine: this server runs remotely. "
                    "To keep your own copy, fetch the URL above (result URLs may expire)."
                )
            await self._remember(self.store.set_local_files(request_id, saved))
        return view

    async def wait_for_result(
        self,
        request_id: str,
        *,
        timeout_s: float,
        include_cost: bool = False,
        download: bool = False,
        on_progress: ProgressReporter = _no_progress,
        caller: Caller = LOCAL_CALLER,
    ) -> WaitResult:
        """Poll until the job ends or `timeout_s` passes; cancelling the wait leaves the job alone."""
        await self._authorize(request_id, caller)  # once: the polls below reuse the answer
        started = anyio.current_time()
        deadline = started + timeout_s
        generating_since: float | None = None
        next_poll = started
        for delay in self.schedule.delays():
            status = await self._status(request_id, caller)
            now = anyio.current_time()
            if status.finished:
                result = await self._result(request_id, caller, include_cost, download)
                return WaitResult(**result.model_dump(), timed_out=False, waited_s=round(now - started, 3))
            if status.status == "in_progress":
                generating_since = generating_since or now
                message = f"generating, {_duration(now - generating_since)}"
            elif status.status == "in_queue":
                where = f", position {status.queue_position}" if status.queue_position is not None else ""
                message = f"in queue{where}"
            else:
                message = status.status
            await on_progress(now - started, message)
            if now >= deadline:
                return WaitResult(
                    request_id=request_id,
                    status=status.status,
                    queue_position=status.queue_position,
                    timed_out=True,
                    waited_s=round(now - started, 3),
                )
            # Polls are due at fixed times from the start, so slow answers (many waits at once) do not add up.
            next_poll = max(next_poll + delay, now)
            await anyio.sleep(min(next_poll, deadline) - now)
        raise AssertionError("the poll schedule never ends")

    async def cancel(self, request_id: str, *, caller: Caller = LOCAL_CALLER) -> CancelOutcome:
        answer = await self.client.cancel(await self._authorize(request_id, caller), token=caller.token)
        if answer.outcome == "cancelled":
            await self._remember(self.store.update(request_id, status="cancelled"))
        return CancelOutcome(request_id=answer.request_id or request_id, outcome=answer.outcome, status=answer.status)

    async def list_jobs(self, *, status: str | None = None, limit: int = 20, caller: Caller = LOCAL_CALLER) -> JobList:
        return JobList(jobs=await self.store.list(owner=caller.owner, status=status, limit=limit))

    async def job_record(self, request_id: str, *, caller: Caller = LOCAL_CALLER) -> JobRecord | None:
        return await self.store.get(check_request_id(request_id), caller.owner)
