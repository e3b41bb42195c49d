"""Hostile numbers against the money rules: every estimate is finite and >= 0 or "unknown", every limit holds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runcomfy_mcp.domain.argument_checker import ArgumentChecker
from runcomfy_mcp.domain.pricing import Estimate, Price, estimate_cost
from runcomfy_mcp.domain.specs import ToolSpec
from runcomfy_mcp.domain.spending import LedgerRow, SpendLimits, Usage
from runcomfy_mcp.errors import SpendLimitError

NAN, INF = float("nan"), float("inf")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string"},
        "duration": {"type": "number", "minimum": 1, "maximum": 10, "default": 5},
        "seconds": {"type": "number"},  # no bounds at all
        "fps": {"type": "number"},
        "num_outputs": {"type": "integer"},
        "seed": {"type": "integer"},
        "points": {"type": "array", "items": {"type": "number"}},
        "camera": {"type": "object", "properties": {"zoom": {"type": "number"}}},
    },
}
SPEC = ToolSpec(
    model_id="acme/clip-1/text-to-video",
    tool_name="clip",
    title="Clip",
    description="A test model.",
    input_schema=SCHEMA,
    output_schema={},
)


def limits(**values: Any) -> SpendLimits:
    base: dict[str, Any] = {
        "max_job_usd": None, "budget_usd": None, "window_h": 24.0, "max_jobs_per_hour": None,
        "max_active_jobs": None, "allow_unpriced": False, "confirm_above_usd": None,
    }  # fmt: skip
    return SpendLimits(**{**base, **values})


# ---------------------------------------------------------------- the arguments


@pytest.mark.parametrize(
    ("arguments", "field", "shown"),
    [
        ({"duration": "nan"}, "duration", "NaN"),  # a string coerced to a number
        ({"duration": "NaN"}, "duration", "NaN"),
        ({"duration": NAN}, "duration", "NaN"),  # a bare NaN in the JSON
        ({"seconds": "-inf"}, "seconds", "-Infinity"),  # no minimum to stop it
        ({"seconds": -INF}, "seconds", "-Infinity"),
        ({"seconds": "1e999"}, "seconds", "Infinity"),  # overflows to infinity
        ({"duration": INF}, "duration", "Infinity"),
        ({"points": [1.0, NAN]}, "points[1]", "NaN"),  # at any depth
        ({"camera": {"zoom": INF}}, "camera.zoom", "Infinity"),
    ],
)
def test_non_finite_numbers_are_refused_with_the_field_named(arguments: dict[str, Any], field: str, shown: str) -> None:
    checked = ArgumentChecker(SPEC).check({"prompt": "x", **arguments})
    named = [p for p in checked.problems if p.startswith(f"{field}: ")]
    assert named and shown in named[0] and "finite" in named[0], checked.problems
    assert field.split(".")[0].split("[")[0] in checked.fields_with_problems


@pytest.mark.parametrize("field", ["duration", "seconds", "fps", "num_outputs"])
def test_negative_lengths_and_counts_are_refused(field: str) -> None:
    checked = ArgumentChecker(SPEC).check({"prompt": "x", field: -5})
    assert any(p.startswith(f"{field}: -5") and "negative" in p for p in checked.problems), checked.problems


def test_ordinary_numbers_pass_and_a_negative_seed_is_fine() -> None:
    checked = ArgumentChecker(SPEC).check({"prompt": "x", "duration": "7.5", "seed": -1, "points": [0.5, -2]})
    assert checked.problems == [] and checked.arguments["duration"] == 7.5


# ---------------------------------------------------------------- the estimate


@pytest.mark.parametrize(
    ("price", "arguments"),
    [
        (Price(0.1, "second"), {"duration": NAN}),
        (Price(0.1, "second"), {"duration": "nan"}),
        (Price(0.1, "second"), {"seconds": -INF}),
        (Price(0.1, "second"), {"duration": -5}),  # −$0.50 for −5 s, were it computed
        (Price(0.1, "second"), {"duration": "ten seconds"}),  # not the default 5 s in disguise
        (Price(0.1, "second"), {"duration": 1e308, "num_outputs": 1e308}),  # overflows to infinity
        (Price(0.1, "second"), {"number_of_frames": 120, "fps": 0}),
        (Price(0.1, "second"), {"number_of_frames": 120, "fps": NAN}),
        (Price(0.1, "output"), {"num_outputs": NAN}),
        (Price(0.1, "output"), {"num_outputs": -3}),
        (Price(NAN, "output"), {}),  # a hostile catalog's price
        (Price(-1.0, "output"), {}),
        (Price(INF, "second"), {"duration": 5}),
    ],
)
def test_an_estimate_is_finite_and_not_negative_or_it_is_unknown(price: Price, arguments: dict[str, Any]) -> None:
    estimate = estimate_cost(price, arguments, SCHEMA)
    assert estimate.usd is None, estimate
    assert estimate.basis.startswith("price unknown")


def test_a_schema_default_that_is_not_a_length_is_not_used() -> None:
    hostile = {"properties": {"duration": {"type": "number", "default": NAN}}}
    assert estimate_cost(Price(0.1, "second"), {}, hostile).usd is None
    negative = {"properties": {"duration": {"type": "number", "default": -5}}}
    assert estimate_cost(Price(0.1, "second"), {}, negative).usd is None


# ---------------------------------------------------------------- the limits


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"max_job_usd": 1.0}, "RUNCOMFY_MAX_JOB_USD"),
        ({"budget_usd": 5.0}, "RUNCOMFY_BUDGET_USD"),
    ],
)
def test_any_spending_limit_refuses_an_unknown_cost_unless_allowed(setting: dict[str, Any], named: str) -> None:
    unknown = Estimate(None, "price unknown: a unit this server does not know ('megapixel')")
    with pytest.raises(SpendLimitError) as refused:
        limits(**setting).check_job(unknown)
    assert named in refused.value.message and "RUNCOMFY_ALLOW_UNPRICED" in refused.value.message
    limits(**setting, allow_unpriced=True).check_job(unknown)  # the operator's explicit choice
    limits().check_job(unknown)  # no spending limit: nothing to protect


@pytest.mark.parametrize("bad", [NAN, INF, -INF, -0.5])
def test_a_stored_amount_that_is_not_money_never_makes_the_total_nan(bad: float) -> None:
    rows = [
        LedgerRow(100.0, "a/b", "outcome_unknown", None, bad),
        LedgerRow(101.0, "a/b", "succeeded", bad, 2.0),
        LedgerRow(102.0, "a/b", "in_queue", None, 1.0),
    ]
    usage = Usage.of(rows, 200.0, 24.0)
    assert math.isfinite(usage.spent()) and usage.spent() >= 1.0
    with pytest.raises(SpendLimitError):
        limits(budget_usd=3.0).check_usage(usage, Estimate(10.0, "a $10 job"))


def test_what_counts_is_what_runcomfy_reports_and_a_job_cancelled_in_the_queue_costs_nothing() -> None:
    rows = [
        LedgerRow(1.0, "a/b", "cancelled", None, 4.0),  # cancelled while queued: never ran
        LedgerRow(2.0, "a/b", "canceled", None, 4.0),  # RunComfy's other spelling
        LedgerRow(3.0, "a/b", "failed", 0.0, 4.0),  # failed, and RunComfy says it cost nothing
        LedgerRow(4.0, "a/b", "succeeded", 0.7, 1.0),  # reported: what counts
        LedgerRow(5.0, "a/b", "failed", None, 0.5),  # failed, cost not known yet: its estimate, to be safe
    ]
    assert Usage.of(rows, 10.0, 24.0).spent() == 1.2
