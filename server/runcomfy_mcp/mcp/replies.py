"""The text an assistant reads for each outcome: what happened and what to do next."""

from __future__ import annotations

import json

from runcomfy_mcp.domain.amounts import count, money
from runcomfy_mcp.domain.views import (
    QUEUE_STATUSES,
    RESULT_STATUSES,
    AccountView,
    CancelOutcome,
    FoundModels,
    JobList,
    JobResult,
    JobStatus,
    ModelDescription,
    Quote,
    SubmittedJob,
    WaitResult,
)


def submitted(job: SubmittedJob) -> str:
    lines = [
        f"Submitted job {job.request_id} to {job.model_id}. It is queued; video jobs usually take 1-10 minutes.",
        f'Follow it with wait_for_result(request_id="{job.request_id}") (call it again while the job runs), or '
        f"get_status / get_result. Do not submit the same job again: each submission is charged.",
    ]
    lines += [f"Note: {note}" for note in job.notes]
    return "\n".join(lines)


def status(view: JobStatus) -> str:
    rid = view.request_id
    if view.status == "in_queue":
        where = f" at position {view.queue_position}" if view.queue_position is not None else ""
        return f"Job {rid} is waiting in the queue{where}. Check again in 10-30 seconds with get_status."
    if view.status == "in_progress":
        return f"Job {rid} is generating. Check again in 15-30 seconds with get_status."
    if view.status == "completed":
        return (
            f"Job {rid} has finished running. That does not yet mean it succeeded: "
            f'call get_result(request_id="{rid}") for the outcome and the video URL.'
        )
    if view.status == "cancelled":
        return f"Job {rid} was cancelled; it produced no video."
    if view.status == "failed":
        return f'Job {rid} failed. Call get_result(request_id="{rid}") for the reason.'
    assert view.status not in QUEUE_STATUSES
    return f"Job {rid} has a status this server does not know: {view.status!r}. Try get_result for details."


def result(view: JobResult, *, download_asked: bool = False) -> str:
    """`download_asked`: the call had download=true, so it is never advised again (an assistant may loop on it)."""
    return "\n".join([_result(view, download_asked), *(f"Note: {note}" for note in view.notes)])


def _result(view: JobResult, download_asked: bool) -> str:
    rid = view.request_id
    cost = f" Cost: {money(view.cost)}." if view.cost is not None else ""
    if view.status == "succeeded":
        if not view.outputs:
            return f"Job {rid} succeeded, but its output holds no file URL. Output: {view.output}.{cost}"
        urls = "\n".join(f"- {o.kind}: {o.url}" for o in view.outputs)
        if view.local_files:
            saved = "\n".join(f"- {path}" for path in view.local_files)
            return f"Job {rid} succeeded. Outputs:\n{urls}\nSaved to:\n{saved}{cost}"
        if download_asked:  # saved where the caller cannot see it: the note says where, and what to do
            return f"Job {rid} succeeded. Outputs:\n{urls}{cost}"
        return (
            f"Job {rid} succeeded. Outputs:\n{urls}\n"
            f"Result URLs may expire; call get_result with download=true to keep a copy on disk.{cost}"
        )
    if view.status == "failed":
        return f"Job {rid} failed: {view.error}{cost} Fix the cause if it is in the arguments, then submit a new job."
    if view.status in ("in_queue", "in_progress"):
        state = "still waiting in the queue" if view.status == "in_queue" else "still generating"
        return f"Job {rid} is not finished yet ({state}). This is not an error: ask again in 15-30 seconds."
    if view.status == "cancelled":
        return f"Job {rid} was cancelled; it has no video."
    assert view.status not in RESULT_STATUSES
    return f"Job {rid} has a result status this server does not know: {view.status!r}. Output: {view.output}"


def cancelled(outcome: CancelOutcome) -> str:
    rid = outcome.request_id
    if outcome.outcome == "cancelled":
        return f"Job {rid} was cancelled before it started; it will not produce a video."
    if outcome.outcome == "not_cancellable":
        return (
            f"Job {rid} could NOT be cancelled: it is already running or has finished, so it goes on "
            "(and may be charged). Its video can still be fetched with get_result when it is done."
        )
    return f"Cancelling job {rid} gave the outcome {outcome.outcome!r}. Check it with get_status."


def wait_timed_out(view: WaitResult) -> str:
    state = "waiting in the queue" if view.status == "in_queue" else "still generating"
    where = f" (position {view.queue_position})" if view.queue_position is not None else ""
    return (
        f"Job {view.request_id} is {state}{where} after waiting {view.waited_s:.0f} s. This is not an error: "
        f'call wait_for_result(request_id="{view.request_id}") again to keep waiting.'
    )


def job_list(jobs: JobList) -> str:
    if not jobs.jobs:
        return "No jobs in the history yet."
    lines = [f"{count(len(jobs.jobs), 'job')}, newest first:"]
    for job in jobs.jobs:
        extra = f" → {job.local_files[0]}" if job.local_files else (f" → {job.outputs[0].url}" if job.outputs else "")
        lines.append(f"- {job.request_id} {job.tool} [{job.status}] submitted {job.submitted_at}{extra}")
    return "\n".join(lines)


def price(base_price_usd: float | None, unit: str | None, note: str | None = None) -> str:
    """The price as RunComfy's CLI prints it, with RunComfy's own note on it beside."""
    if base_price_usd is None:
        amount = "price unknown"
    else:
        amount = f"{money(base_price_usd)}/{unit}" if unit else money(base_price_usd)
    return f"{amount}; {note}" if note else amount


FIND_NEXT = "describe_model shows a model's inputs; run_model runs it."


def found_models(found: FoundModels, next_step: str = FIND_NEXT) -> str:
    """`next_step`: what to do with a row, in the words of whoever reads it (the assistant's tools by default)."""
    lines = [found.note] if found.note else []
    if not found.models:
        lines.append("No model matched. Try fewer or other words, or a category.")
        return "\n".join(lines)
    shown = (
        f"{len(found.models)} of {count(found.total, 'model')}"
        if found.total > len(found.models)
        else count(found.total, "model")
    )
    lines.append(f"{shown}, best match first:" if found.total > 1 else f"{shown}:")
    for row in found.models:
        tool = f" [tool: {row.tool}]" if row.tool else ""
        lines.append(
            f"- {row.model_id}: {row.name} ({price(row.base_price_usd, row.price_unit, row.pricing_note)}){tool}. "
            f"{row.description}"
        )
    lines.append(next_step)
    return "\n".join(lines)


def model_description(model: ModelDescription, how_to_run: str | None = None) -> str:
    """`how_to_run`: the last line, when not the assistant's (which tool submits it)."""
    head = f"{model.model_id}: {model.name} ({price(model.base_price_usd, model.price_unit, model.pricing_note)})."
    lines = [head, model.description] if model.description else [head]
    if model.model_url:
        lines.append(f"Page: {model.model_url}")
    if not model.runnable:
        lines.append(f"It cannot be run from here: {model.problem}")
        return "\n".join(lines)
    schema = model.input_schema or {}
    required = set(schema.get("required", []))
    lines.append("Inputs (run_model's input; * = required):")
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type", "any")
        facts = [" or ".join(map(str, kind)) if isinstance(kind, list) else str(kind)]
        if "enum" in prop:
            facts.append("one of " + ", ".join(json.dumps(v) for v in prop["enum"]))
        for key, word in (("minimum", "min"), ("maximum", "max"), ("maxLength", "max length"), ("default", "default")):
            if key in prop:
                facts.append(f"{word} {json.dumps(prop[key])}")
        text = f" {prop['description']}" if prop.get("description") else ""
        lines.append(f"- {name}{'*' if name in required else ''} ({'; '.join(facts)}).{text}")
    call = f"{model.tool} (its own tool) or run_model" if model.tool else "run_model"
    lines.append(how_to_run or f"Every input is checked before anything is paid; submit with {call}.")
    return "\n".join(lines)


def account(view: AccountView) -> str:
    if view.balance_usd is not None:
        balance = f"RunComfy balance: {money(view.balance_usd)}."
    else:
        why = view.balance_unknown_because or "RunComfy gave no reason."
        balance = f"RunComfy balance: unknown, it could not be read. {why}"
    lines = [
        balance,
        f"Spent in the last {view.window_h:g} h: {money(view.spent_usd)} on {count(view.jobs, 'job')}"
        + (f", {view.unpriced_jobs} of them of unknown cost" if view.unpriced_jobs else "")
        + " (actual costs of finished jobs, estimates of the rest).",
    ]
    lines += [f"- {m.model_id}: {money(m.spent_usd)} ({count(m.jobs, 'job')})" for m in view.by_model]
    limits = view.limits
    lines.append("Limits: " + "; ".join(limits.summary) + ".")
    left = []
    if limits.budget_left_usd is not None:
        left.append(f"{money(limits.budget_left_usd)} of the budget")
    if limits.jobs_left_this_hour is not None:
        left.append(f"{count(limits.jobs_left_this_hour, 'job')} this hour")
    if limits.max_active_jobs is not None:
        left.append(f"{count(max(0, limits.max_active_jobs - limits.active_jobs), 'more unfinished job')} at once")
    if left:
        lines.append("Left: " + ", ".join(left) + ".")
    return "\n".join(lines)


def quote(view: Quote) -> str:
    cost = money(view.estimated_cost_usd) if view.estimated_cost_usd is not None else "unknown"
    lines = [f"{view.model_id}: estimated cost {cost} ({view.basis}). Nothing was sent."]
    if view.refusal:
        lines.append(f"A submit would be refused now: {view.refusal}")
    elif view.needs_confirmation:
        lines.append("Submitting it will ask the person to confirm first.")
    if view.balance_usd is not None:
        lines.append(f"RunComfy balance: {money(view.balance_usd)}.")
    if view.still_needed:
        lines.append("Quoted from the inputs given; a submit will also need: " + " ".join(view.still_needed))
    return "\n".join(lines)
