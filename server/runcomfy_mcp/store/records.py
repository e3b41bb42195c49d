"""What both history backends share: the stored form of arguments, and a row read back as a JobRecord."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from runcomfy_mcp.domain.outputs import collect_outputs, digest_data_uris
from runcomfy_mcp.domain.pricing import usd_amount
from runcomfy_mcp.domain.spending import LedgerRow
from runcomfy_mcp.domain.views import JobRecord, SharedPoll
from runcomfy_mcp.errors import StoreError


def checked_amount(name: str, value: float | None) -> float | None:
    """An amount about to be stored: None, or money (finite, at least 0). Anything else is refused, so no total
    read back from the history can become NaN."""
    if value is not None and usd_amount(value) is None:
        raise StoreError(f"The job history refused {name}={value!r}: an amount is a finite number of at least 0.")
    return value


def insert_statement(p: str) -> str:
    """The INSERT of a submission (a second record of the same id replaces the first), `p` the placeholder."""
    return (
        "INSERT INTO jobs (request_id, owner, model_id, tool, arguments, submitted_at, updated_at, status,"
        f" estimated_cost) VALUES ({', '.join([p] * 9)}) ON CONFLICT (request_id) DO UPDATE SET"
        " owner = excluded.owner, model_id = excluded.model_id, tool = excluded.tool, arguments = excluded.arguments,"
        " updated_at = excluded.updated_at, status = excluded.status, estimated_cost = excluded.estimated_cost"
    )


def insert_values(
    request_id: str,
    model_id: str,
    tool: str,
    arguments: Mapping[str, Any],
    owner: str,
    status: str,
    estimated_cost: float | None,
) -> tuple[Any, ...]:
    now = time.time()
    amount = checked_amount("estimated_cost", estimated_cost)
    return (request_id, owner, model_id, tool, stored_arguments(arguments), now, now, status, amount)


def ledger_statement(p: str) -> str:
    return (
        "SELECT submitted_at, model_id, status, cost, estimated_cost FROM jobs"
        f" WHERE owner = {p} AND submitted_at >= {p} ORDER BY submitted_at"
    )


def ledger_rows(rows: Iterable[Any]) -> list[LedgerRow]:
    """Rows of `ledger_statement`, from either driver (both index rows by column name)."""
    return [LedgerRow(r["submitted_at"], r["model_id"], r["status"], r["cost"], r["estimated_cost"]) for r in rows]


def update_statement(p: str) -> str:
    """The UPDATE for what a status or result call learned, with `p` as the driver's placeholder."""
    # 'completed' from the status call must not hide the result's own 'succeeded' or 'failed'.
    return (
        f"UPDATE jobs SET status = CASE WHEN {p} = 'completed' AND status IN ('succeeded', 'failed') THEN status"
        f" ELSE {p} END, updated_at = {p}, video_urls = COALESCE({p}, video_urls), output = COALESCE({p}, output),"
        f" error = COALESCE({p}, error), cost = COALESCE({p}, cost) WHERE request_id = {p}"
    )


def update_values(
    request_id: str,
    status: str,
    video_urls: list[str] | None,
    output: Mapping[str, Any] | None,
    error: str | None,
    cost: float | None,
) -> tuple[Any, ...]:
    """The values `update_statement` takes, in its order; unknown fields stay as they are (NULL → COALESCE)."""
    urls = json.dumps(video_urls) if video_urls else None
    amount = checked_amount("cost", cost)
    return (status, status, time.time(), urls, json.dumps(output) if output else None, error, amount, request_id)


def stored_arguments(arguments: Mapping[str, Any]) -> str:
    return json.dumps(digest_data_uris(arguments), ensure_ascii=False)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def record_from_row(row: Mapping[str, Any]) -> JobRecord:
    arguments = json.loads(row["arguments"])
    output = json.loads(row["output"]) if row["output"] else None
    return JobRecord(
        request_id=row["request_id"],
        model_id=row["model_id"],
        tool=row["tool"],
        arguments=arguments,
        submitted_at=_iso(row["submitted_at"]),
        updated_at=_iso(row["updated_at"]),
        status=row["status"],
        outputs=collect_outputs(output, arguments.values()) if isinstance(output, dict) else [],
        video_urls=json.loads(row["video_urls"]),
        local_files=json.loads(row["local_files"]),
        error=row["error"],
        cost=usd_amount(row["cost"]),  # an older release may have stored NaN: shown as unknown
        estimated_cost_usd=usd_amount(row["estimated_cost"]),
        submitted_epoch=float(row["submitted_at"]),
    )


# How long a claimed poll stands unanswered before another wait asks RunComfy itself: a status request's answer
# takes longer only when RunComfy (or the claiming replica) is in trouble.
CLAIM_STANDS_S = 1.5


def poll_share(
    row: Mapping[str, Any] | None, now: float, seen: float | None, fresh_s: float, claim_s: float = CLAIM_STANDS_S
) -> SharedPoll:
    """What a wait learns from a job's `status_polls` row (both backends decide alike): an answer newer than
    `seen` (or, at a wait's first look, from the last `fresh_s`); else whether another wait is asking now
    (a claim newer than the last answer, less than `claim_s` old); else its own turn."""
    answered = row["answered_at"] if row else None
    newer_than = seen if seen is not None else now - fresh_s
    if row and row["status"] and answered is not None and answered > newer_than:
        return SharedPoll(status=row["status"], queue_position=row["queue_position"], answered_at=answered)
    claimed = row["claimed_at"] if row else None
    if claimed is not None and claimed > now - claim_s and (answered is None or claimed > answered):
        return SharedPoll()
    return SharedPoll(yours=True)
