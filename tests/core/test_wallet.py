"""The wallet on its own: a fake price and balance source, a fake ledger and an injected clock."""

from __future__ import annotations

import pytest

from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.core.wallet import ConsentRequest, Wallet
from runcomfy_mcp.domain.pricing import Estimate, Price
from runcomfy_mcp.domain.spending import LedgerRow
from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.errors import BalanceTooLowError, ConsentError, RunComfyError, SpendLimitError
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

SPEC = next(s for s in load_specs() if s.tool_name == "dreamina_3_0_image_to_video")
ALICE = Caller(token="alice-token", owner="alice", private=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Prices:
    def __init__(self, price: Price | None) -> None:
        self.price_ = price

    async def price(self, model_id: str, *, token: str | None = None) -> Price | None:
        if self.price_ is None:
            raise RunComfyError("the catalog could not be read")
        return self.price_


class Balances:
    def __init__(self, usd: float) -> None:
        self.usd = usd
        self.reads = 0

    async def balance_usd(self, token: str | None) -> float:
        self.reads += 1
        return self.usd


class Ledger:
    def __init__(self, rows: list[tuple[str, LedgerRow]]) -> None:
        self.rows = rows

    async def ledger(self, owner: str, since: float) -> list[LedgerRow]:
        return [r for who, r in self.rows if who == owner and r.submitted_at >= since]


HALF_A_DOLLAR = Price(0.5, "video")


def wallet(clock: Clock, balances: Balances, price: Price | None = HALF_A_DOLLAR, **limits: object) -> Wallet:
    return Wallet(Settings(**limits).spend_limits(), Prices(price), balances, clock=clock)  # type: ignore[arg-type]


async def test_the_estimate_comes_from_the_price_and_an_unreadable_price_is_unknown() -> None:
    clock, balances = Clock(), Balances(10.0)
    assert (await wallet(clock, balances).estimate(SPEC, {})).usd == 0.5
    unknown = await wallet(clock, balances, price=None).estimate(SPEC, {})
    # Not "no price": the person is told the catalog could not be read, and why, so they can try again.
    assert unknown.usd is None and "catalog could not be read just now (the catalog could not be read)" in unknown.basis


async def test_a_balance_is_read_again_only_after_it_goes_stale_or_a_job_is_sent() -> None:
    clock, balances = Clock(), Balances(10.0)
    purse = wallet(clock, balances)
    assert await purse.balance(ALICE) == 10.0
    clock.now += 29
    assert await purse.balance(ALICE) == 10.0 and balances.reads == 1  # fresh for 30 s
    clock.now += 2
    await purse.balance(ALICE)
    assert balances.reads == 2
    purse.spent(ALICE)  # a job was sent: what was read before it is stale
    await purse.balance(ALICE)
    assert balances.reads == 3


async def test_a_job_above_the_balance_is_refused_before_it_is_sent() -> None:
    purse = wallet(Clock(), Balances(0.2))
    with pytest.raises(BalanceTooLowError, match=r"\$0\.20"):
        await purse.approve(SPEC, SPEC.tool_name, Estimate(0.5, "test"), ALICE, None)


async def test_consent_is_asked_above_the_threshold_and_a_no_sends_nothing() -> None:
    purse = wallet(Clock(), Balances(10.0), confirm_above_usd=0.1)
    asked: list[ConsentRequest] = []

    async def say_no(request: ConsentRequest) -> bool:
        asked.append(request)
        return False

    with pytest.raises(ConsentError, match="did not confirm"):
        await purse.approve(SPEC, SPEC.tool_name, Estimate(0.5, "test"), ALICE, say_no)
    assert asked[0].estimate.usd == 0.5 and asked[0].balance_usd == 10.0 and asked[0].threshold_usd == 0.1
    with pytest.raises(ConsentError, match="cannot ask"):
        await purse.approve(SPEC, SPEC.tool_name, Estimate(0.5, "test"), ALICE, None)


def row(owner: str, at: float, usd: float) -> tuple[str, LedgerRow]:
    return owner, LedgerRow(submitted_at=at, model_id=SPEC.model_id, status="succeeded", cost=usd, estimated_cost=usd)


async def test_the_budget_window_moves_with_the_clock() -> None:
    clock = Clock()
    purse = wallet(clock, Balances(100.0), budget_usd=1.0, budget_window_h=1.0)
    ledger = Ledger([row("alice", clock.now - 1800, 0.8), row("bob", clock.now - 60, 5.0)])
    quote = await purse.quote(SPEC, Estimate(0.5, "test"), ALICE, ledger)
    assert quote.refusal and "RUNCOMFY_BUDGET_USD" in quote.refusal  # 0.8 + 0.5 > 1.0; bob's spending is not hers
    clock.now += 1801  # her $0.80 has left the window
    assert (await purse.quote(SPEC, Estimate(0.5, "test"), ALICE, ledger)).refusal is None
    check = purse.usage_check(Estimate(1.5, "test"))
    assert check is not None
    with pytest.raises(SpendLimitError):
        check(await ledger.ledger("alice", purse.ledger_since()))


async def test_the_account_counts_the_window_by_model() -> None:
    clock = Clock()
    purse = wallet(clock, Balances(7.5), budget_usd=10.0)
    ledger = Ledger([row("alice", clock.now - 100, 0.5), row("alice", clock.now - 50, 0.25), row("alice", 0, 9.0)])
    account = await purse.account(ALICE, ledger)
    assert account.balance_usd == 7.5 and account.spent_usd == 0.75 and account.jobs == 2
    assert account.limits.budget_left_usd == 9.25
    assert [(m.model_id, m.jobs) for m in account.by_model] == [(SPEC.model_id, 2)]


async def test_the_balance_cache_never_holds_a_callers_token() -> None:
    """50 callers ask for their account: what the wallet keeps names them by fingerprint, never by token."""
    import gc

    clock, balances = Clock(), Balances(10.0)
    purse = wallet(clock, balances)
    tokens = [f"rc-caller-{i:03d}-" + "s3cret" * 4 for i in range(50)]
    for token in tokens:
        await purse.account(Caller.with_token(token), Ledger([]))
    del token
    gc.collect()
    kept = repr(vars(purse))
    assert not [t for t in tokens if t in kept]
    assert await purse.balance(Caller.with_token(tokens[7])) == 10.0 and balances.reads == 50  # still a cache
    alices = Caller.with_token(tokens[7])
    purse.spent(alices)
    await purse.balance(alices)
    assert balances.reads == 51
