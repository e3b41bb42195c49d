"""The core's vocabulary: who asks, and the views it answers with.

The MCP layer needs these to declare its tools, long before any job runs, so this module stays
free of the core's heavy parts (HTTP, SQLite, image parsing): those load on the first call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr
from pydantic.json_schema import SkipJsonSchema

from runcomfy_mcp.domain.outputs import Output

QueueStatus = Literal["in_queue", "in_progress", "completed", "cancelled", "failed"]
ResultStatus = Literal["succeeded", "failed", "in_queue", "in_progress", "cancelled"]
QUEUE_STATUSES: frozenset[str] = frozenset(QueueStatus.__args__)  # type: ignore[attr-defined]
RESULT_STATUSES: frozenset[str] = frozenset(ResultStatus.__args__)  # type: ignore[attr-defined]
FINISHED_STATUSES = frozenset({"completed", "cancelled", "failed", "succeeded"})
# History status of a submit that may or may not have reached RunComfy (kept under a local id).
OUTCOME_UNKNOWN = "outcome_unknown"
# Every status a history entry can have: the queue's and the result's, and a submit of unknown outcome.
HistoryStatus = Literal[QueueStatus, ResultStatus, "outcome_unknown"]
UNCONFIRMED_PREFIX = "unconfirmed-"


class SubmittedJob(BaseModel):
    request_id: str = Field(description="Id to pass to get_status, get_result and cancel.")
    model_id: str
    tool: str
    status: Literal["in_queue"] = Field(description="Always 'in_queue' right after submission.")
    estimated_cost_usd: float | None = Field(default=None, description="The estimate; null when the price is unknown.")
    notes: list[str] = Field(default_factory=list, description="What was done with the inputs, and soft advice.")


class JobStatus(BaseModel):
    request_id: str
    status: str = Field(description="in_queue, in_progress, completed, cancelled or failed.")
    queue_position: int | None = Field(default=None, description="Place in the queue while in_queue.")
    finished: bool = Field(description="True once the run has ended (which does not mean it succeeded).")


class PreviewFacts(BaseModel):
    frames_at_s: list[float] = Field(description="Where each frame of the contact sheet was taken; [] for an image.")


class JobResult(BaseModel):
    request_id: str
    status: str = Field(description="The result's own status: succeeded, failed, in_queue, in_progress or cancelled.")
    output: dict[str, Any] | None = Field(default=None, description="The model's output object, as RunComfy sent it.")
    outputs: list[Output] = Field(default_factory=list, description="Every output file: url and kind.")
    video_urls: list[str] = Field(default_factory=list, description="The video outputs' URLs.")
    error: str | None = Field(default=None, description="Why the job failed, when it did.")
    cost: float | None = Field(default=None, description="Cost in USD, when RunComfy reported it.")
    local_files: list[str] = Field(default_factory=list, description="Where the outputs were saved, if downloaded.")
    notes: list[str] = Field(default_factory=list, description="Anything else worth telling the user.")
    preview: PreviewFacts | None = Field(default=None, description="The image shown before the text, if any.")
    # For the in-chat player (model, prompt, duration…): in the result, but kept out of the schema every turn pays for.
    model_id: SkipJsonSchema[str | None] = None
    inputs: SkipJsonSchema[dict[str, Any] | None] = None
    estimated_cost_usd: SkipJsonSchema[float | None] = None  # the submit's estimate: a cost the player can show
    saved_as: SkipJsonSchema[list[str] | None] = None  # what this call saved, by name: the player's one line about it
    _preview_jpeg: bytes | None = PrivateAttr(default=None)

    @property
    def preview_jpeg(self) -> bytes | None:
        return self._preview_jpeg

    def attach_preview(self, frames_at_s: list[float], jpeg: bytes | None) -> None:
        """The picture goes to the person and the assistant as an image, never into structured content."""
        self.preview = PreviewFacts(frames_at_s=frames_at_s)
        self._preview_jpeg = jpeg


class WaitResult(JobResult):
    timed_out: bool = Field(description="True when the wait ended before the job did; call wait_for_result again.")
    waited_s: float = Field(description="How long this call waited.")
    queue_position: int | None = None


@dataclass(frozen=True)
class SharedPoll:
    """A job's status as the waits on it share it through the history (every process and replica on it).

    `status` set: an answer newer than the asking wait had seen. Else `yours`: no newer answer and no poll
    on its way, so this wait asks RunComfy (its claim is recorded); else another wait is asking right now.
    """

    status: str | None = None
    queue_position: int | None = None
    answered_at: float | None = None  # on the history's clock
    yours: bool = False


class JobRecord(BaseModel):
    request_id: str
    model_id: str
    tool: str
    arguments: dict[str, Any] = Field(description="The arguments sent; inlined images appear as a digest.")
    submitted_at: str = Field(description="UTC time of submission, ISO 8601.")
    updated_at: str
    status: str = Field(description="Last known status.")
    outputs: list[Output] = Field(default_factory=list)
    video_urls: list[str] = Field(default_factory=list)
    local_files: list[str] = Field(default_factory=list)
    error: str | None = None
    cost: float | None = None
    estimated_cost_usd: float | None = None
    # When it was submitted, to the microsecond as the history keeps it (submitted_at shows whole seconds): for
    # the poll schedule, never shown.
    submitted_epoch: SkipJsonSchema[float | None] = Field(default=None, exclude=True)


class JobList(BaseModel):
    jobs: list[JobRecord]


class CancelOutcome(BaseModel):
    request_id: str
    outcome: str = Field(description="'cancelled', or 'not_cancellable' when the job already runs or ended.")
    status: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who is asking: whose RunComfy token to use and which slice of the history is theirs."""

    token: str | None = None  # None: the server's own token
    owner: str = ""  # the history partition (a token fingerprint in HTTP mode, never the token)
    private: bool = False  # only jobs this caller submitted may be read, waited on, downloaded or cancelled

    @classmethod
    def with_token(cls, token: str) -> Caller:
        """A remote caller who pays with their own token and sees only their own jobs."""
        return cls(token=token, owner=fingerprint(token), private=True)


def fingerprint(token: str) -> str:
    """A stable name for a token's slice of the history; the token itself is never stored."""
    return "key:" + hashlib.sha256(token.encode()).hexdigest()[:24]


LOCAL_CALLER = Caller()  # the person at this machine (stdio): the server's token, the whole history
SHARED_CALLER = Caller(token=None, owner="shared", private=True)  # HTTP callers sharing the server's token


ProgressReporter = Callable[[float, str], Awaitable[None]]


class ModelFacts(BaseModel):
    model_id: str
    name: str
    categories: list[str]
    base_price_usd: float | None = None
    price_unit: str | None = None
    pricing_note: str | None = Field(default=None, description="RunComfy's note on the price, when it gives one.")
    tool: str | None = Field(default=None, description="This model's own tool here, if it has one.")


class ModelRow(ModelFacts):
    description: str = Field(description="One line.")


class FoundModels(BaseModel):
    models: list[ModelRow]
    total: int = Field(description="How many models matched.")
    source: str = Field(description="live, cache (RunComfy unreachable) or bundled (no catalog yet).")
    note: str | None = None


class ModelDescription(ModelFacts):
    description: str
    model_url: str | None = None
    runnable: bool = Field(description="False when its schema cannot be used here (see problem).")
    problem: str | None = None
    input_schema: dict[str, Any] | None = Field(default=None, description="The arguments run_model's input takes.")


class ModelSpending(BaseModel):
    model_id: str
    spent_usd: float
    jobs: int


class LimitView(BaseModel):
    max_job_usd: float | None = None
    budget_usd: float | None = None
    budget_window_h: float
    budget_left_usd: float | None = None
    max_jobs_per_hour: int | None = None
    jobs_left_this_hour: int | None = None
    max_active_jobs: int | None = None
    active_jobs: int
    confirm_above_usd: float | None = None
    allow_unpriced: bool
    summary: list[str]


class AccountView(BaseModel):
    balance_usd: float | None = Field(description="RunComfy's balance; null when it could not be read.")
    balance_unknown_because: str | None = Field(default=None, description="Why the balance could not be read.")
    window_h: float
    spent_usd: float = Field(description="In the window: actual costs of finished jobs, estimates of the rest.")
    jobs: int
    unpriced_jobs: int = Field(description="Jobs in the window with neither a cost nor an estimate.")
    by_model: list[ModelSpending]
    limits: LimitView


class Quote(BaseModel):
    model_id: str
    estimated_cost_usd: float | None = Field(description="Null when the price is unknown.")
    basis: str = Field(description="How the estimate was reached, or why it is unknown.")
    needs_confirmation: bool = Field(description="Submitting it would ask the person first.")
    refusal: str | None = Field(default=None, description="Why a submit would be refused now, if it would.")
    balance_usd: float | None = None
    still_needed: list[str] = Field(
        default_factory=list, description="Required inputs not given: the quote is from what was given."
    )
