"""The core: submit a job for a model spec, follow it, cancel it. No MCP and no HTTP details here.

A paid job is recorded before it is sent (a reservation the spending limits are checked against) and
confirmed under RunComfy's id once accepted. Should the history's database fail between the two, the
confirmed id is kept in memory and written at the next call (or when the server stops): the caller can
follow it meanwhile, and the reservation does not stay behind as a job of unknown outcome.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from runcomfy_mcp.core.delivery import OutputDelivery
from runcomfy_mcp.core.wallet import Consent, Wallet
from runcomfy_mcp.domain.amounts import money
from runcomfy_mcp.domain.argument_checker import ArgumentChecker
from runcomfy_mcp.domain.ids import check_request_id
from runcomfy_mcp.domain.outputs import collect_outputs, digest_data_uris
from runcomfy_mcp.domain.pricing import Estimate, usd_amount
from runcomfy_mcp.domain.specs import ToolSpec
from runcomfy_mcp.domain.views import (
    FINISHED_STATUSES,
    LOCAL_CALLER,
    OUTCOME_UNKNOWN,
    UNCONFIRMED_PREFIX,
    AccountView,
    Caller,
    CancelOutcome,
    HistoryStatus,
    JobList,
    JobRecord,
    JobResult,
    JobStatus,
    ProgressReporter,
    Quote,
    SubmittedJob,
    WaitResult,
)
from runcomfy_mcp.errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    InsufficientBalanceError,
    InvalidArgumentsError,
    InvalidTokenError,
    MalformedResponseError,
    MissingTokenError,
    RequestNotFoundError,
    RunComfyError,
    SpendLimitError,
    StoreError,
    SubmitNotSentError,
    SubmitOutcomeUnknownError,
    UnconfirmedSubmissionError,
)
from runcomfy_mcp.media.input_preparer import InputPreparer
from runcomfy_mcp.upstream.client import ResultResponse, RunComfyClient
from runcomfy_mcp.upstream.statuses import failure_reason

if TYPE_CHECKING:
    from runcomfy_mcp.core.frame_inputs import FrameInputs
    from runcomfy_mcp.store.base import Store

logger = logging.getLogger(__name__)


ARGUMENT_CHECK_THREADS = 4
LOOKS_AT_ONCE = 16  # a caller's waits looking at their jobs at once, as many as requests in flight to the API
POLL_BACKOFF = 1.5  # each poll interval this much longer than the last, up to the ceiling
# While another wait on the same job is asking RunComfy, a wait looks again after these pauses; by their end
# (past the history's CLAIM_STANDS_S) an unanswered claim is taken over: its replica may have gone away.
SHARED_POLL_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)
# What a submit can fail with that proves the request never created a job: refused, unreachable, never sent.
NEVER_SENT = (APIStatusError, APIConnectionError, MissingTokenError, InvalidTokenError, SubmitNotSentError)


@dataclass
class Unrecorded:
    """A job RunComfy accepted that the history has not been told of yet (its database failed at the time)."""

    request_id: str
    owner: str
    local_id: str | None  # its reservation, to confirm under request_id; None: no reservation, record it anew
    record: dict[str, Any] = field(default_factory=dict)  # what record_submission needs, when there is none


@dataclass
class LookTurns:
    """A caller's turns to look at jobs, and how many of its waits hold or wait for one (gone at none)."""

    semaphore: anyio.Semaphore = field(default_factory=lambda: anyio.Semaphore(LOOKS_AT_ONCE))
    users: int = 0


@dataclass(frozen=True)
class PollSchedule:
    """Quick at first, then backing off: a ten-minute job costs a few dozen status requests. Values from the
    settings (`poll_initial_s`, `poll_max_s`), which hold the defaults."""

    initial_s: float
    max_s: float

    def delays(self) -> Iterable[float]:
        delay = self.initial_s
        while True:
            yield delay
            delay = min(self.max_s, delay * POLL_BACKOFF)

    def delays_after(self, age: float) -> Iterator[float]:
        """The pauses after a first look at a job `age` seconds old, at the schedule's own times counted from its
        submission: the pace of a wait that had followed it from the start. A time less than half its pause after
        the first look is skipped (two looks that close together learn nothing); at the ceiling the next time is
        found in one step (a year-old job would be a walk of 3 million)."""
        delays, due = iter(self.delays()), 0.0
        while True:
            delay = next(delays)
            if delay == self.max_s > 0 and due + delay < age:
                due += (age - due) // delay * delay  # the last time due before now
            due += delay
            if due - age >= delay / 2:
                return itertools.chain([due - age], delays)


async def _no_progress(progress: float, message: str) -> None:
    return None


def _outcome_unknown(spec: ToolSpec, exc: RunComfyError) -> str:
    return (
        f"Submitting the job to {spec.model_id} reached RunComfy, but its answer could not be used ({exc.message}), "
        "so the job may or may not exist. Do NOT submit it again blindly (that could pay twice): check list_jobs and "
        "the RunComfy dashboard's request list first."
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


class JobService:
    """Submits and follows RunComfy jobs for the loaded tool specs, and remembers them."""

    def __init__(
        self,
        client: RunComfyClient,
        inputs: InputPreparer,
        store: Store,
        delivery: OutputDelivery,
        schedule: PollSchedule,
        *,
        wallet: Wallet,
        frames: FrameInputs | None = None,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`frames` turns frame URIs of earlier jobs into images (None: they are left as they are). `clock` and
        `sleep` pace wait_for_result, `wall_clock` tells a job's age from its submission time; tests hand in fakes
        to count polls exactly."""
        self.client = client
        self.inputs = inputs
        self.store = store
        self.delivery = delivery
        self.schedule = schedule
        self.wallet = wallet
        self.frames = frames
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._checkers: dict[tuple[str, str], tuple[ToolSpec, ArgumentChecker]] = {}
        self._recorded_status: dict[str, str] = {}  # polls mostly repeat a status: write only changes
        self._checks: anyio.CapacityLimiter | None = None
        self._unrecorded: dict[str, Unrecorded] = {}  # RunComfy's id → what the history still lacks
        self._catching_up = anyio.Lock()
        # RunComfy's /result answers an unfinished job with its state (see _look); should it ever refuse one
        # instead, waits go back to asking /status and stay there.
        self._result_tells_state = True
        self._look_turns: dict[str, LookTurns] = {}  # each caller's own; see _look_turn

    async def _remember(self, work: Awaitable[None]) -> None:
        """History is a convenience: a disk problem is logged, never allowed to fail a paid call."""
        try:
            await work
        except StoreError:
            logger.exception("could not update the job history")

    def _check_threads(self) -> anyio.CapacityLimiter:
        if self._checks is None:
            self._checks = anyio.CapacityLimiter(ARGUMENT_CHECK_THREADS)
        return self._checks

    def _checker(self, spec: ToolSpec) -> ArgumentChecker:
        key = (spec.model_id, spec.tool_name)
        known = self._checkers.get(key)
        if known is None or known[0] is not spec:  # a catalog model whose schema changed gets a new checker
            known = self._checkers[key] = (spec, ArgumentChecker(spec))
        return known[1]

    async def prepare_arguments(
        self, spec: ToolSpec, arguments: Mapping[str, Any] | None, caller: Caller = LOCAL_CALLER, tool: str = ""
    ) -> tuple[dict[str, Any], list[str]]:
        """What to send for a call, and notes for the assistant; raises InvalidArgumentsError with every problem."""
        prepared, notes, _ = await self._prepare(spec, arguments, caller, tool, quoting=False)
        return prepared, notes

    async def _prepare(
        self, spec: ToolSpec, arguments: Mapping[str, Any] | None, caller: Caller, tool: str, *, quoting: bool
    ) -> tuple[dict[str, Any], list[str], list[str]]:
        """`quoting`: required inputs may be missing (a price rarely depends on them); they are returned, with what
        each takes, instead of refused. Every other problem is refused as for a submit."""
        # In a worker thread: a catalog schema's checks are bounded (linear patterns, counted arguments) but not free,
        # and the event loop serves every other caller meanwhile. A few threads of their own, so a flood of checks
        # cannot take the threads the history and file reads need.
        checked = await anyio.to_thread.run_sync(self._checker(spec).check, arguments, limiter=self._check_threads())
        framed = await self.frames.inline(checked.arguments, caller) if self.frames else None
        prepared = await self.inputs.prepare(
            spec, framed.arguments if framed else checked.arguments, skip=checked.fields_with_problems,
            owner=caller.owner,
        )  # fmt: skip
        problems = checked.problems + (framed.problems if framed else []) + prepared.problems
        if quoting and set(problems) <= set(checked.missing.values()):
            problems = []  # only inputs not given yet: quoted from the rest (any other problem names them all)
        if problems:
            raise InvalidArgumentsError(tool or spec.tool_name, problems)
        notes = (framed.notes if framed else []) + prepared.notes
        still_needed = list(checked.missing.values()) if quoting else []
        return prepared.arguments, notes + spec.advice_for(checked.arguments), still_needed

    async def catch_up(self) -> None:
        """Tell the history what it missed while its database was away; what it still cannot take stays in memory
        for the next call. Cheap when nothing is missing."""
        if not self._unrecorded or self._catching_up.locked():
            return
        async with self._catching_up:
            for entry in list(self._unrecorded.values()):
                try:
                    if entry.local_id is not None:
                        await self.store.confirm(entry.local_id, entry.request_id)
                    else:
                        await self.store.record_submission(**entry.record)
                except StoreError as exc:
                    logger.warning(
                        "the job history is still unavailable (%s); %s stays in memory", exc, entry.request_id
                    )
                    return
                del self._unrecorded[entry.request_id]
                self._recorded_status.pop(entry.request_id, None)
                logger.info("the job history has caught up with %s", entry.request_id)

    async def _authorize(self, request_id: str, caller: Caller) -> str:
        check_request_id(request_id)
        await self.catch_up()
        unrecorded = self._unrecorded.get(request_id)
        if unrecorded is not None and unrecorded.owner == caller.owner:
            return request_id  # accepted by RunComfy for this caller; the history will know it once it answers
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
        self,
        spec: ToolSpec,
        arguments: Mapping[str, Any] | None,
        *,
        caller: Caller = LOCAL_CALLER,
        tool: str = "",
        consent: Consent | None = None,
    ) -> SubmittedJob:
        """`tool`: the tool that was called, when not the model's own (run_model). `consent` asks the person, when
        the client can be asked. Checked, estimated, approved and recorded before it is sent; sent at most once."""
        tool = tool or spec.tool_name
        self.client.require_token(caller.token)  # before anything else is asked of anyone
        await self.catch_up()
        to_send, notes = await self.prepare_arguments(spec, arguments, caller, tool)
        estimate = await self.wallet.estimate(spec, to_send, caller.token)
        await self.wallet.approve(spec, tool, estimate, caller, consent)
        local_id = await self._reserve(spec, tool, to_send, caller, estimate)
        try:
            answer = await self.client.submit(spec.model_id, to_send, token=caller.token)
        except NEVER_SENT as exc:
            if local_id is not None:  # refused or never sent: no job exists, so none is kept
                with anyio.CancelScope(shield=True):
                    await self._remember(self.store.discard(local_id))
            if isinstance(exc, InsufficientBalanceError):
                raise await self._short_of_money(exc, caller, estimate) from exc
            raise
        except RunComfyError as exc:
            # Possibly a paid job (it may have been created whatever the answer said): it stays findable in
            # list_jobs under its local id, and counts against limits.
            if local_id is None:
                local_id = UNCONFIRMED_PREFIX + secrets.token_hex(8)
                await self._record_submission(local_id, spec, tool, to_send, caller, OUTCOME_UNKNOWN, estimate)
            message = exc.message if isinstance(exc, SubmitOutcomeUnknownError) else _outcome_unknown(spec, exc)
            raise SubmitOutcomeUnknownError(
                f"{message} This attempt is kept in list_jobs as {local_id} (status '{OUTCOME_UNKNOWN}')."
            ) from exc
        self.wallet.spent(caller)
        await self._record_accepted(answer.request_id, local_id, spec, tool, to_send, caller, estimate)
        if estimate.usd is not None:
            notes.insert(0, f"Estimated cost: {money(estimate.usd)} ({estimate.basis}).")
        else:
            notes.insert(0, f"Cost not estimated: {estimate.basis}.")
        return SubmittedJob(
            request_id=answer.request_id,
            model_id=spec.model_id,
            tool=tool,
            status="in_queue",
            estimated_cost_usd=estimate.usd,
            notes=notes,
        )

    async def _short_of_money(
        self, exc: InsufficientBalanceError, caller: Caller, estimate: Estimate
    ) -> InsufficientBalanceError:
        """RunComfy's refusal, with the balance beside the estimate when the balance can be read."""
        balance = await self.wallet.balance(caller, fresh=True)
        if balance is None:
            return exc
        cost = f"; this job was estimated at {money(estimate.usd)}" if estimate.usd is not None else ""
        return InsufficientBalanceError(
            f"{exc.message} The balance is {money(balance)}{cost}.",
            status_code=exc.status_code,
            error_code=exc.error_code,
            upstream_message=exc.upstream_message,
        )

    async def _record_accepted(
        self,
        request_id: str,
        local_id: str | None,
        spec: ToolSpec,
        tool: str,
        sent: Mapping[str, Any],
        caller: Caller,
        estimate: Estimate,
    ) -> None:
        """RunComfy accepted the job: confirm its reservation, or record it. A paid job is never forgotten: when the
        history's database fails now, the id is kept in memory and written at the next call."""
        record: dict[str, Any] = {
            "request_id": request_id, "model_id": spec.model_id, "tool": tool, "estimated_cost": estimate.usd,
            "arguments": sent, "owner": caller.owner, "status": "in_queue",
        }  # fmt: skip
        entry = Unrecorded(request_id, caller.owner, local_id, {} if local_id else record)
        try:
            with anyio.CancelScope(shield=True):  # the job exists now: its record must not be cancelled away
                if local_id is not None:
                    await self.store.confirm(local_id, request_id)
                else:
                    await self.store.record_submission(**record)
        except StoreError:
            logger.exception("could not record %s in the job history; kept in memory until it answers", request_id)
            self._unrecorded[request_id] = entry

    async def _reserve(
        self, spec: ToolSpec, tool: str, to_send: Mapping[str, Any], caller: Caller, estimate: Estimate
    ) -> str | None:
        """Record the job before it is sent, checking the history's limits in the same transaction. Returns its
        local id, or None when the history cannot be written and no limit depends on it."""
        check = self.wallet.usage_check(estimate)
        local_id = UNCONFIRMED_PREFIX + secrets.token_hex(8)
        try:
            await self.store.reserve(
                local_id=local_id,
                model_id=spec.model_id,
                tool=tool,
                arguments=to_send,
                owner=caller.owner,
                estimated_cost=estimate.usd,
                since=self.wallet.ledger_since(),
                check=check,
            )
        except StoreError as exc:
            if check is not None:
                raise SpendLimitError(
                    "The job history cannot be read or written, so the spending limits cannot be checked and nothing "
                    "was sent. Check the disk holding RUNCOMFY_DATA_DIR, then try again."
                ) from exc
            logger.exception("could not record the submission in the job history")
            return None
        return local_id

    async def _record_submission(
        self,
        request_id: str,
        spec: ToolSpec,
        tool: str,
        sent: Mapping[str, Any],
        caller: Caller,
        status: str,
        estimate: Estimate,
    ) -> None:
        await self._remember(
            self.store.record_submission(
                request_id=request_id,
                model_id=spec.model_id,
                tool=tool,
                estimated_cost=estimate.usd,
                arguments=sent,
                owner=caller.owner,
                status=status,
            )
        )

    async def get_status(self, request_id: str, *, caller: Caller = LOCAL_CALLER) -> JobStatus:
        return await self._status(await self._authorize(request_id, caller), caller)

    async def get_result(
        self,
        request_id: str,
        *,
        include_cost: bool = False,
        download: bool = False,
        preview: bool = False,
        caller: Caller = LOCAL_CALLER,
    ) -> JobResult:
        checked = await self._authorize(request_id, caller)
        return await self._result(checked, caller, include_cost, download, preview)

    async def _status(self, request_id: str, caller: Caller) -> JobStatus:
        answer = await self.client.status(request_id, token=caller.token)
        await self._note_status(request_id, answer.status)
        return self._status_view(answer.request_id or request_id, answer.status, answer.queue_position)

    async def _note_status(self, request_id: str, status: str) -> None:
        if self._recorded_status.get(request_id) != status and request_id not in self._unrecorded:
            await self._remember(self.store.update(request_id, status=status))
            self._recorded_status[request_id] = status

    async def _look(
        self, request_id: str, caller: Caller, *, at_result: bool
    ) -> tuple[JobStatus, ResultResponse | None]:
        """A wait's question to RunComfy. A job being generated is asked at /result, which answers with the job's
        state until it ends and then with its outputs (RunComfy's own clients poll only there): the look that sees
        it finish holds the result already, so a job's end costs one request rather than a status and a result —
        a thousand jobs ending together, a thousand requests fewer. A queued job is asked at /status, the only
        answer that tells its place in the queue. Returns the status, and the result when a look at /result saw the
        job end (None otherwise: the caller fetches it)."""
        if not (at_result and self._result_tells_state):
            return await self._status(request_id, caller), None
        try:
            answer = await self.client.result(request_id, include_cost=True, token=caller.token)
        except (RequestNotFoundError, BadRequestError, MalformedResponseError):
            status = await self._status(request_id, caller)  # a job that is really gone fails here, as it should
            if not status.finished:  # refused, or answered unreadably, while /status says it runs
                logger.warning("RunComfy's /result did not answer an unfinished job; waits ask /status from now on")
                self._result_tells_state = False
            return status, None  # ended: fetching its result says what there is to say
        view = self._status_view(answer.request_id or request_id, answer.status, None)
        if view.finished:
            return view, answer
        await self._note_status(request_id, answer.status)
        return view, None

    async def _delays_for(self, request_id: str, caller: Caller) -> Iterator[float]:
        """The pauses after a wait's first look, on the poll schedule counted from the job's submission, not from
        this wait: a wait on a job submitted a minute ago polls at the minute-old pace at once (a thousand waits
        begun together on older jobs would otherwise all poll every second again). A job the history does not
        know starts the schedule afresh."""
        record = await self._record(request_id, caller)
        if record is None or record.submitted_epoch is None:
            return iter(self.schedule.delays())
        return self.schedule.delays_after(max(0.0, self._wall_clock() - record.submitted_epoch))

    async def _shared_status(
        self, request_id: str, caller: Caller, seen: float | None, *, fresh_s: float, at_result: bool
    ) -> tuple[JobStatus, float | None, ResultResponse | None]:
        """A wait's look at its job: a status another wait (in any process or replica on this history) fetched since
        this one's last look, else one fetched now (see _look), shared with the others. Returns it, when it was
        fetched, and the job's result when this look fetched one."""
        for pause in SHARED_POLL_PAUSES:
            async with self._look_turn(caller.owner):
                shared = await self._shared_look(request_id, caller, seen, fresh_s=fresh_s, at_result=at_result)
            if shared is not None:
                return shared
            await self._sleep(pause)  # another wait is asking RunComfy right now: its answer will do
        async with self._look_turn(caller.owner):  # that wait is slow to answer: ask too
            status, answer = await self._look(request_id, caller, at_result=at_result)
        return status, seen, answer

    @asynccontextmanager
    async def _look_turn(self, owner: str) -> AsyncIterator[None]:
        """One of a caller's LOOKS_AT_ONCE turns to look at a job. A thousand waits due together queue here holding
        only their own frames (not built requests and retry loops, 4–7 MB of a thousand waits' peak), and the turns
        are each caller's own: a caller whose looks are slow (its token rate-limited, its retries backing off) holds
        only its own turns, never another caller's."""
        turns = self._look_turns.setdefault(owner, LookTurns())
        turns.users += 1
        try:
            async with turns.semaphore:
                yield
        finally:
            turns.users -= 1
            if not turns.users:
                del self._look_turns[owner]

    async def _shared_look(
        self, request_id: str, caller: Caller, seen: float | None, *, fresh_s: float, at_result: bool
    ) -> tuple[JobStatus, float | None, ResultResponse | None] | None:
        """One try of _shared_status; None: another wait is asking RunComfy right now."""
        try:
            share = await self.store.share_poll(request_id, caller.owner, seen=seen, fresh_s=fresh_s)
        except StoreError:
            logger.exception("could not read the job's shared status; asking RunComfy")
            status, answer = await self._look(request_id, caller, at_result=at_result)
            return status, seen, answer
        if share.status is not None:
            return self._status_view(request_id, share.status, share.queue_position), share.answered_at, None
        if not share.yours:
            return None
        status, answer = await self._look(request_id, caller, at_result=at_result)
        try:
            answered = await self.store.record_poll(
                request_id, caller.owner, status=status.status, queue_position=status.queue_position
            )
        except StoreError:
            logger.exception("could not share the job's status with other waits")
            return status, seen, answer
        return status, answered, answer

    @staticmethod
    def _status_view(request_id: str, status: str, queue_position: int | None) -> JobStatus:
        return JobStatus(
            request_id=request_id,
            status=status,
            queue_position=queue_position if status == "in_queue" else None,
            finished=status in FINISHED_STATUSES,
        )

    async def _result(
        self,
        request_id: str,
        caller: Caller,
        include_cost: bool,
        download: bool,
        preview: bool = False,
        answer: ResultResponse | None = None,
    ) -> JobResult:
        """`answer`: RunComfy's result when a wait's last look fetched it already."""
        # The cost is always asked for: the ledger counts what RunComfy charged once it is known (a failed job may
        # cost nothing); the caller sees it when they asked.
        if answer is None:
            answer = await self.client.result(request_id, include_cost=True, token=caller.token)
        cost = usd_amount(answer.cost)  # an upstream NaN or negative amount is no cost at all
        failed = answer.status == "failed"
        record = await self._record(request_id, caller)
        outputs = collect_outputs(answer.output, list(record.arguments.values()) if record else [])
        view = JobResult(
            request_id=answer.request_id or request_id,
            status=answer.status,
            output=digest_data_uris(answer.output),  # an echoed input, shortened as `inputs` are
            outputs=outputs,
            video_urls=[o.url for o in outputs if o.kind == "video"],
            error=failure_reason(answer.error, answer.failure_reason) if failed else None,
            cost=cost if include_cost else None,
            model_id=record.model_id if record else None,
            inputs=record.arguments if record else None,
            estimated_cost_usd=record.estimated_cost_usd if record else None,
        )
        await self._remember(
            self.store.update(
                request_id,
                status=view.status,
                video_urls=view.video_urls,
                output=view.output,
                error=view.error,
                cost=cost,
            )
        )
        if view.status == "succeeded" and view.outputs:
            saved = await self.delivery.deliver(view, record, download=download, preview=preview)
            if saved is not None:
                await self._remember(self.store.set_local_files(request_id, saved))
        return view

    async def _record(self, request_id: str, caller: Caller) -> JobRecord | None:
        """The history's entry: what the job was sent (an echoed input is not an output) and where it was saved."""
        try:
            return await self.store.get(request_id, caller.owner)
        except StoreError:
            return None

    async def wait_for_result(
        self,
        request_id: str,
        *,
        timeout_s: float,
        include_cost: bool = False,
        download: bool = False,
        preview: bool = False,
        on_progress: ProgressReporter = _no_progress,
        caller: Caller = LOCAL_CALLER,
    ) -> WaitResult:
        """Poll until the job ends or `timeout_s` passes; cancelling the wait leaves the job alone."""
        await self._authorize(request_id, caller)  # checked once, not at every poll
        started = self._clock()
        deadline = started + timeout_s
        generating_since: float | None = None
        next_poll = started
        seen: float | None = None  # when the last status this wait saw was fetched, on the history's clock
        at_result = False  # the first look asks /status: a queued job's place is told there only
        for delay in await self._delays_for(request_id, caller):
            status, seen, answer = await self._shared_status(
                request_id, caller, seen, fresh_s=delay, at_result=at_result
            )
            at_result = status.status == "in_progress"
            now = self._clock()
            if status.finished:
                result = await self._result(request_id, caller, include_cost, download, preview, answer)
                waited = WaitResult(**result.model_dump(), timed_out=False, waited_s=round(now - started, 3))
                if result.preview is not None:
                    waited.attach_preview(result.preview.frames_at_s, result.preview_jpeg)
                return waited
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
            await self._sleep(min(next_poll, deadline) - now)
        raise AssertionError("the poll schedule never ends")

    async def cancel(self, request_id: str, *, caller: Caller = LOCAL_CALLER) -> CancelOutcome:
        answer = await self.client.cancel(await self._authorize(request_id, caller), token=caller.token)
        if answer.outcome == "cancelled":
            await self._remember(self.store.update(request_id, status="cancelled"))
        return CancelOutcome(request_id=answer.request_id or request_id, outcome=answer.outcome, status=answer.status)

    async def list_jobs(
        self, *, status: HistoryStatus | None = None, limit: int = 20, caller: Caller = LOCAL_CALLER
    ) -> JobList:
        await self.catch_up()
        return JobList(jobs=await self.store.list(owner=caller.owner, status=status, limit=limit))

    async def job_record(self, request_id: str, *, caller: Caller = LOCAL_CALLER) -> JobRecord | None:
        return await self.store.get(check_request_id(request_id), caller.owner)

    async def quote(
        self, spec: ToolSpec, arguments: Mapping[str, Any] | None, *, caller: Caller = LOCAL_CALLER
    ) -> Quote:
        """What submitting would cost and whether it would go through, with the arguments checked; nothing is sent.
        Quoted from what is given: the required inputs not given yet are listed as what a submit will still need."""
        to_send, _, still_needed = await self._prepare(spec, arguments, caller, "estimate_cost", quoting=True)
        quote = await self.wallet.quote(
            spec, await self.wallet.estimate(spec, to_send, caller.token), caller, self.store
        )
        quote.still_needed = still_needed
        return quote

    async def account(self, *, caller: Caller = LOCAL_CALLER) -> AccountView:
        await self.catch_up()
        return await self.wallet.account(caller, self.store)

    async def use_once(self, mark: str, expires_at: float) -> bool:
        """True the first time `mark` is used, on any process or replica of this history (a person's yes)."""
        return await self.store.use_once(mark, expires_at)
