"""Money before a job is sent: its estimate, the limits, the person's consent, the balance; and `get_account`.

The order matters: nothing is asked of the person for a job a limit would refuse anyway, and the
limits that depend on the history are checked last, inside the store's transaction (see
`JobService.submit_job`), so that racing submits cannot both pass them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from runcomfy_mcp.domain.amounts import money
from runcomfy_mcp.domain.pricing import Estimate, Price, estimate_cost
from runcomfy_mcp.domain.specs import ToolSpec
from runcomfy_mcp.domain.spending import LedgerRow, SpendLimits, Usage, describe_limits
from runcomfy_mcp.domain.views import AccountView, Caller, LimitView, ModelSpending, Quote, fingerprint
from runcomfy_mcp.errors import BalanceTooLowError, ConsentError, RunComfyError, SpendLimitError

logger = logging.getLogger(__name__)

BALANCE_FRESH_S = 30.0  # a balance read this recently stands in for a new read before a submit
MAX_BALANCES_KEPT = 1024  # callers whose balance is remembered; past that, stale entries go first


class PriceSource(Protocol):
    async def price(self, model_id: str, *, token: str | None = ...) -> Price | None: ...


class BalanceSource(Protocol):
    async def balance_usd(self, token: str | None) -> float: ...


class Ledger(Protocol):
    async def ledger(self, owner: str, since: float) -> list[LedgerRow]: ...


@dataclass(frozen=True)
class ConsentRequest:
    model_id: str
    tool: str
    estimate: Estimate
    balance_usd: float | None
    threshold_usd: float


def _balance_key(caller: Caller) -> str | None:
    """Whose balance: the caller's token by its fingerprint (a memory holds no token), or the server's own."""
    return fingerprint(caller.token) if caller.token else None


Consent = Callable[[ConsentRequest], Awaitable[bool]]
"""Asks the person; True only for an explicit yes. None where the client cannot be asked."""


class Wallet:
    def __init__(
        self,
        limits: SpendLimits,
        prices: PriceSource,
        balances: BalanceSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` dates the ledger's window and the balance's freshness; tests hand in a fake one."""
        self.limits = limits
        self._prices = prices
        self._balances = balances
        self._clock = clock
        # The token's fingerprint (None: the server's own token) → (read at, balance). Never the token itself.
        self._recent_balance: dict[str | None, tuple[float, float]] = {}

    async def estimate(self, spec: ToolSpec, arguments: Mapping[str, Any], token: str | None = None) -> Estimate:
        """`token`: the caller's, for reading the catalog's price when the server has no token of its own."""
        try:
            price = await self._prices.price(spec.model_id, token=token)
        except RunComfyError as exc:  # not "no price": the catalog that holds it could not be read just now
            logger.info("no price for %s: %s", spec.model_id, exc.message)
            return Estimate(None, f"price unknown: RunComfy's catalog could not be read just now ({exc.shown()})")
        return estimate_cost(price, arguments, spec.input_schema)

    async def balance(self, caller: Caller, *, fresh: bool = False) -> float | None:
        """The account's balance, or None when it cannot be read (which never blocks a job by itself)."""
        return (await self.balance_or_why_not(caller, fresh=fresh))[0]

    async def balance_or_why_not(self, caller: Caller, *, fresh: bool = False) -> tuple[float | None, str | None]:
        """The balance, or None and why it could not be read (the error's own message: no secret is in it)."""
        now = self._clock()
        key = _balance_key(caller)
        recent = self._recent_balance.get(key)
        if recent and not fresh and now - recent[0] < BALANCE_FRESH_S:
            return recent[1], None
        try:
            usd = await self._balances.balance_usd(caller.token)
        except RunComfyError as exc:
            logger.info("balance not read: %s", exc.message)
            return None, exc.shown()
        if len(self._recent_balance) >= MAX_BALANCES_KEPT:
            self._forget_stale(now)
        self._recent_balance[key] = (now, usd)
        return usd, None

    def _forget_stale(self, now: float) -> None:
        stale = [k for k, (read_at, _) in self._recent_balance.items() if now - read_at >= BALANCE_FRESH_S]
        for key in stale or list(self._recent_balance)[: MAX_BALANCES_KEPT // 2]:  # all fresh: the oldest half
            del self._recent_balance[key]

    def spent(self, caller: Caller) -> None:
        """A job was sent: the balance read before it is stale."""
        self._recent_balance.pop(_balance_key(caller), None)

    async def approve(
        self, spec: ToolSpec, tool: str, estimate: Estimate, caller: Caller, consent: Consent | None
    ) -> None:
        """Every check that needs no history; raises a RunComfyError saying which failed. Nothing is sent here."""
        self.limits.check_job(estimate)
        balance = await self.balance(caller) if estimate.known or self.limits.needs_consent(estimate) else None
        if self.limits.needs_consent(estimate):
            await self._ask(spec, tool, estimate, balance, consent)
        self._check_balance(estimate, balance)

    @staticmethod
    def _check_balance(estimate: Estimate, balance: float | None) -> None:
        """When both are known, a job estimated above the balance is refused before it is sent."""
        if estimate.usd is not None and balance is not None and estimate.usd > balance:
            raise BalanceTooLowError(
                f"This job is estimated at {money(estimate.usd)} ({estimate.basis}), more than the RunComfy balance "
                f"of {money(balance)}, so nothing was sent. Top up the balance on runcomfy.com, or choose a cheaper "
                "job."
            )

    def ledger_since(self) -> float:
        """How far back the history must be read for every limit."""
        return self._clock() - self.limits.history_window_s

    def usage_check(self, estimate: Estimate) -> Callable[[list[LedgerRow]], None] | None:
        """The limits that depend on the history, as a check of a ledger (the store runs it in the transaction
        that records the job); None when no such limit is set."""
        if not self.limits.counts_usage:
            return None
        now = self._clock()

        def check(rows: list[LedgerRow]) -> None:
            self.limits.check_usage(Usage.of(rows, now, self.limits.window_h), estimate)

        return check

    async def quote(self, spec: ToolSpec, estimate: Estimate, caller: Caller, ledger: Ledger) -> Quote:
        """Whether a submit would go through now, and why not: every check, nothing asked, nothing sent."""
        balance = await self.balance(caller)
        refusal = None
        try:
            self.limits.check_job(estimate)
            check = self.usage_check(estimate)
            if check is not None:
                check(await ledger.ledger(caller.owner, self.ledger_since()))
            self._check_balance(estimate, balance)
        except (SpendLimitError, BalanceTooLowError) as exc:
            refusal = exc.message
        return Quote(
            model_id=spec.model_id,
            estimated_cost_usd=estimate.usd,
            basis=estimate.basis,
            needs_confirmation=self.limits.needs_consent(estimate),
            refusal=refusal,
            balance_usd=balance,
        )

    async def _ask(
        self, spec: ToolSpec, tool: str, estimate: Estimate, balance: float | None, consent: Consent | None
    ) -> None:
        threshold = self.limits.confirm_above_usd
        assert threshold is not None
        cost = money(estimate.usd) if estimate.usd is not None else "of unknown cost"
        if consent is None:
            raise ConsentError(
                f"This job ({spec.model_id}) is {'estimated at ' if estimate.known else ''}{cost}, and jobs above "
                f"{money(threshold)} need the person's yes (RUNCOMFY_CONFIRM_ABOVE_USD), but this client cannot ask "
                "them (it does not support MCP elicitation), so nothing was sent. Use a client that supports "
                "elicitation, choose a cheaper job, or raise or unset RUNCOMFY_CONFIRM_ABOVE_USD in the server's "
                "environment."
            )
        request = ConsentRequest(spec.model_id, tool, estimate, balance, threshold)
        if not await consent(request):
            raise ConsentError(
                f"The person did not confirm this job ({spec.model_id}, {cost}), so nothing was sent and nothing "
                "was charged. Ask them before trying again."
            )

    async def account(self, caller: Caller, ledger: Ledger) -> AccountView:
        now = self._clock()
        rows = await ledger.ledger(caller.owner, now - self.limits.history_window_s)
        usage = Usage.of(rows, now, self.limits.window_h)
        in_window = usage.in_window()
        remaining = self.limits.remaining(usage)
        limits = LimitView(
            max_job_usd=self.limits.max_job_usd,
            budget_usd=self.limits.budget_usd,
            budget_window_h=self.limits.window_h,
            budget_left_usd=remaining["budget_usd"],
            max_jobs_per_hour=self.limits.max_jobs_per_hour,
            jobs_left_this_hour=remaining["jobs_this_hour"],  # type: ignore[arg-type]
            max_active_jobs=self.limits.max_active_jobs,
            active_jobs=len(usage.active()),
            confirm_above_usd=self.limits.confirm_above_usd,
            allow_unpriced=self.limits.allow_unpriced,
            summary=list(describe_limits(self.limits)) or ["no spending limits are set"],
        )
        by_model = [
            ModelSpending(model_id=m, spent_usd=usd, jobs=sum(1 for r in in_window if r.model_id == m))
            for m, usd in sorted(usage.by_model().items(), key=lambda item: -item[1])
        ]
        balance, why_not = await self.balance_or_why_not(caller, fresh=True)
        return AccountView(
            balance_usd=balance,
            balance_unknown_because=why_not,
            window_h=self.limits.window_h,
            spent_usd=usage.spent(),
            jobs=len(in_window),
            unpriced_jobs=sum(1 for r in in_window if r.cost is None and r.estimated_cost is None),
            by_model=by_model,
            limits=limits,
        )
