"""Limits on what jobs may cost, and what has been spent, from the history's ledger.

Spent in the window = what RunComfy reported each job cost, once it has (`include_cost`), else its
estimate, for unfinished jobs too, including submits of unknown outcome; a job cancelled in the queue
never ran and costs nothing. An amount that is not money (NaN, infinite, negative: a hostile
upstream, or a history written before the checks) counts as unknown, so a total is never NaN. The store
runs the wallet's `usage_check` (`SpendLimits.check_usage` on the ledger) inside the transaction
that records the new job, so two processes racing cannot both take the last of a budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runcomfy_mcp.domain.amounts import count, money
from runcomfy_mcp.domain.films import FILM_MODEL_ID
from runcomfy_mcp.domain.pricing import Estimate, usd_amount
from runcomfy_mcp.domain.views import OUTCOME_UNKNOWN
from runcomfy_mcp.errors import SpendLimitError

HOUR_S = 3600.0
ACTIVE_HORIZON_S = 6 * HOUR_S  # an unfinished job older than this is not counted as running (never polled)
UNFINISHED = frozenset({"in_queue", "in_progress", OUTCOME_UNKNOWN})
CANCELLED_IN_QUEUE = frozenset({"cancelled", "canceled"})  # RunComfy cancels only jobs that have not started


@dataclass(frozen=True)
class LedgerRow:
    """One job of the history, as far as money and counts go."""

    submitted_at: float
    model_id: str
    status: str
    cost: float | None
    estimated_cost: float | None

    @property
    def charged(self) -> float:
        """What this job counts against a budget: its reported cost, else nothing if it was cancelled before it
        started, else its estimate (nothing when that is unknown)."""
        cost = usd_amount(self.cost)
        if cost is not None:
            return cost
        if self.status in CANCELLED_IN_QUEUE:
            return 0.0
        return usd_amount(self.estimated_cost) or 0.0


@dataclass(frozen=True)
class Usage:
    rows: tuple[LedgerRow, ...]  # oldest first, since `since`
    now: float
    window_s: float

    @classmethod
    def of(cls, rows: Iterable[LedgerRow], now: float, window_h: float) -> Usage:
        """The ledger's paid jobs: films, made here for nothing, are in the history but spend nothing."""
        paid = (r for r in rows if r.model_id != FILM_MODEL_ID)
        return cls(tuple(sorted(paid, key=lambda r: r.submitted_at)), now, window_h * HOUR_S)

    def in_window(self) -> list[LedgerRow]:
        return [r for r in self.rows if r.submitted_at >= self.now - self.window_s]

    def spent(self) -> float:
        return round(sum(r.charged for r in self.in_window()), 6)

    def last_hour(self) -> list[LedgerRow]:
        return [r for r in self.rows if r.submitted_at >= self.now - HOUR_S]

    def active(self) -> list[LedgerRow]:
        return [r for r in self.rows if r.status in UNFINISHED and r.submitted_at >= self.now - ACTIVE_HORIZON_S]

    def by_model(self) -> dict[str, float]:
        spent: dict[str, float] = {}
        for row in self.in_window():
            spent[row.model_id] = round(spent.get(row.model_id, 0.0) + row.charged, 6)
        return spent


def clock_time(epoch: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


@dataclass(frozen=True)
class SpendLimits:
    """Values from the settings (`Settings.spend_limits`), which hold the defaults; None is "no such limit"."""

    max_job_usd: float | None
    budget_usd: float | None
    window_h: float
    max_jobs_per_hour: int | None
    max_active_jobs: int | None
    allow_unpriced: bool
    confirm_above_usd: float | None

    @property
    def counts_usage(self) -> bool:
        """Whether a submission must be checked against the ledger (atomically, in the store)."""
        return any(v is not None for v in (self.budget_usd, self.max_jobs_per_hour, self.max_active_jobs))

    @property
    def history_window_s(self) -> float:
        """How far back the ledger must be read for every limit."""
        return max(self.window_h * HOUR_S, HOUR_S, ACTIVE_HORIZON_S)

    def needs_consent(self, estimate: Estimate) -> bool:
        if self.confirm_above_usd is None:
            return False
        return estimate.usd is None or estimate.usd > self.confirm_above_usd

    def check_job(self, estimate: Estimate) -> None:
        """The limits a job meets or not on its own: its size, and whether it has a price at all."""
        if estimate.usd is None and not self.allow_unpriced:
            self._refuse_unpriced(estimate)
        if self.max_job_usd is not None and estimate.usd is not None and estimate.usd > self.max_job_usd:
            raise SpendLimitError(
                f"This job is estimated at {money(estimate.usd)} ({estimate.basis}), above the "
                f"{money(self.max_job_usd)} a single job may cost here (RUNCOMFY_MAX_JOB_USD), so nothing was sent. "
                "Choose a shorter or smaller job, or ask the person running this server to raise the limit."
            )

    def _refuse_unpriced(self, estimate: Estimate) -> None:
        """Any spending limit stops a job of unknown cost: it could be any size (the operator may allow them)."""
        set_limits = [
            f"{name}={value:g}"
            for name, value in (("RUNCOMFY_MAX_JOB_USD", self.max_job_usd), ("RUNCOMFY_BUDGET_USD", self.budget_usd))
            if value is not None
        ]
        if set_limits:
            raise SpendLimitError(
                f"This job's cost cannot be estimated ({estimate.basis}), and a spending limit is set "
                f"({', '.join(set_limits)}), so nothing was sent: a job of unknown cost could pass it. Use a model "
                "with a known price (find_models shows prices), or ask the person running this server to set "
                "RUNCOMFY_ALLOW_UNPRICED=1 in its environment."
            )

    def check_usage(self, usage: Usage, estimate: Estimate) -> None:
        """The limits that depend on what was already submitted; raises SpendLimitError naming the first broken."""
        cost = estimate.usd or 0.0
        if self.budget_usd is not None:
            spent = usage.spent()
            left = max(0.0, self.budget_usd - spent)
            if spent + cost > self.budget_usd + 1e-9:
                raise SpendLimitError(
                    f"This job ({money(cost)}, {estimate.basis}) would pass the budget of {money(self.budget_usd)} "
                    f"per {self.window_h:g} h (RUNCOMFY_BUDGET_USD): {money(spent)} is spent or reserved, "
                    f"{money(left)} is left, so nothing was sent. {self._budget_frees(usage, cost)}"
                )
        if self.max_jobs_per_hour is not None:
            recent = usage.last_hour()
            if len(recent) >= self.max_jobs_per_hour:
                frees = (
                    f" The next slot frees at {clock_time(recent[-self.max_jobs_per_hour].submitted_at + HOUR_S)}."
                    if self.max_jobs_per_hour
                    else ""
                )
                raise SpendLimitError(
                    f"{count(len(recent), 'job')} {'was' if len(recent) == 1 else 'were'} submitted in the last hour, "
                    f"the most allowed (RUNCOMFY_MAX_JOBS_PER_HOUR="
                    f"{self.max_jobs_per_hour}), so nothing was sent; none is left this hour.{frees}"
                )
        if self.max_active_jobs is not None:
            active = usage.active()
            if len(active) >= self.max_active_jobs:
                raise SpendLimitError(
                    f"{count(len(active), 'job')} {'is' if len(active) == 1 else 'are'} still unfinished, the most "
                    f"allowed at once (RUNCOMFY_MAX_ACTIVE_JOBS={self.max_active_jobs}), so nothing was sent. Room "
                    f"frees up as soon as {'it ends' if len(active) == 1 else 'one of them ends'}: follow "
                    f"{'it' if len(active) == 1 else 'them'} with wait_for_result (list_jobs shows "
                    f"{'it' if len(active) == 1 else 'them'}), then submit again."
                )

    def _budget_frees(self, usage: Usage, cost: float) -> str:
        if self.budget_usd is None or cost > self.budget_usd:
            return "This job alone is more than the whole budget."
        need = usage.spent() + cost - self.budget_usd
        freed = 0.0
        for row in usage.in_window():
            freed += row.charged
            if freed >= need - 1e-9:
                return f"Enough room frees up at {clock_time(row.submitted_at + usage.window_s)}."
        return "Room frees up as jobs leave the window."

    def remaining(self, usage: Usage) -> dict[str, float | int | None]:
        """What is left of each limit that is set (None for those that are not)."""
        return {
            "budget_usd": None if self.budget_usd is None else round(max(0.0, self.budget_usd - usage.spent()), 6),
            "jobs_this_hour": None
            if self.max_jobs_per_hour is None
            else max(0, self.max_jobs_per_hour - len(usage.last_hour())),
            "active_jobs": None if self.max_active_jobs is None else max(0, self.max_active_jobs - len(usage.active())),
        }


def describe_limits(limits: SpendLimits) -> Sequence[str]:
    words = []
    if limits.max_job_usd is not None:
        words.append(f"at most {money(limits.max_job_usd)} a job")
    if limits.budget_usd is not None:
        words.append(f"a budget of {money(limits.budget_usd)} per {limits.window_h:g} h")
    if limits.max_jobs_per_hour is not None:
        words.append(f"at most {count(limits.max_jobs_per_hour, 'job')} an hour")
    if limits.max_active_jobs is not None:
        words.append(f"at most {count(limits.max_active_jobs, 'unfinished job')} at once")
    if limits.confirm_above_usd is not None:
        words.append(f"the person confirms jobs above {money(limits.confirm_above_usd)}")
    return words
