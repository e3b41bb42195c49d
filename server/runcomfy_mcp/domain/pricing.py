"""What a job will cost, from the catalog's price (`base_price_usd` per `price_unit`) and the call's arguments.

Units this server understands: per output (image, video, generation, request…), per second or minute
of output (from `duration`, or frames at the model's frame rate), per character or thousand
characters of text. Anything else is "price unknown" — said honestly, never guessed. So is a
length, a count or a price that is not a finite number of at least 0 (NaN passes every
comparison, so a NaN estimate would pass every limit): an estimate is an amount, or unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runcomfy_mcp.domain.amounts import money

_PER_OUTPUT = {
    "output", "outputs", "image", "images", "video", "videos", "generation", "generations", "request",
    "requests", "run", "runs", "call", "calls", "job", "jobs", "clip", "clips", "result", "results", "audio",
}  # fmt: skip
_PER_SECOND = {"second", "seconds", "sec", "secs", "s"}
_PER_MINUTE = {"minute", "minutes", "min", "mins"}
_PER_CHARACTER = {"character", "characters", "char", "chars"}
_PER_1K_CHARACTERS = {"1k_characters", "1k_chars", "1000_characters", "1000_chars", "k_characters", "kchars"}
_COUNT_FIELDS = ("num_outputs", "num_images", "number_of_images", "num_videos", "n", "batch_size")
_SECONDS_FIELDS = ("duration", "duration_seconds", "seconds", "video_length")
_FRAME_FIELDS = ("number_of_frames", "num_frames", "frames")
_TEXT_FIELDS = ("text", "prompt", "input", "script")
_FPS_FIELD = "fps"
PRICED_NUMBER_FIELDS = frozenset(_COUNT_FIELDS + _SECONDS_FIELDS + _FRAME_FIELDS + (_FPS_FIELD,))
"""The fields whose numbers set what a job costs: a negative one is refused as an argument."""
DEFAULT_FPS = 24.0  # Dreamina's 121 frames ≈ 5 s


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str | None

    def words(self) -> str:
        return f"{money(self.usd)} per {self.unit.replace('_', ' ')}" if self.unit else f"{money(self.usd)} a job"


@dataclass(frozen=True)
class Estimate:
    usd: float | None  # None: price unknown; else finite and >= 0
    basis: str  # how it was reached, or why it is unknown

    def __post_init__(self) -> None:
        if self.usd is not None and usd_amount(self.usd) is None:
            raise ValueError(f"an estimate is an amount of at least $0 or unknown, not {self.usd!r}")

    @property
    def known(self) -> bool:
        return self.usd is not None


def usd_amount(value: object) -> float | None:
    """`value` as an amount of money (a finite number, at least 0), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


class _NotALength(Exception):
    """A price-setting value that is there but is no finite number of at least 0."""

    def __init__(self, field: str, value: Any) -> None:
        super().__init__(field)
        self.words = f"{field} is {value!r}, not a length or count this server can price"


def _unit(unit: str | None) -> str:
    text = (unit or "").strip().lower().removeprefix("per ").removeprefix("/").strip()
    return re.sub(r"[\s-]+", "_", text)


def _number(field: str, value: Any) -> float | None:
    """A count or a length given as a number or a numeric string ("5", "5s", "10 sec"); None when absent.
    Raises _NotALength for anything else: an unreadable length is unknown, never the default in disguise."""
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = usd_amount(value)  # finite and >= 0, as a length or a count must be
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\s*", value.lower())
        number = float(match[1]) if match else None
    if number is None:
        raise _NotALength(field, value)
    return number


def _given(field: str, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> float | None:
    """An argument's value, or the schema's default when it was left out."""
    if field in arguments:
        return _number(field, arguments[field])
    prop = schema.get("properties", {}).get(field)
    return _number(field, prop.get("default")) if isinstance(prop, Mapping) else None


def _first(
    fields: tuple[str, ...], arguments: Mapping[str, Any], schema: Mapping[str, Any]
) -> tuple[str, float] | None:
    for field in fields:
        value = _given(field, arguments, schema)
        if value is not None:
            return field, value
    return None


def _seconds(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[float, str] | None:
    """The output's length: what the call says (in seconds or frames), else the schema's defaults."""
    for source in (arguments, {}):  # the call's own values first: a frame count beats a default duration
        found = _first(_SECONDS_FIELDS, source, schema if source is not arguments else {})
        if found:
            return found[1], f"{found[1]:g} s"
        frames = _first(_FRAME_FIELDS, source, schema if source is not arguments else {})
        if frames:
            fps = _given(_FPS_FIELD, arguments, schema)
            fps = DEFAULT_FPS if fps is None else fps
            if fps <= 0:
                raise _NotALength(_FPS_FIELD, fps)
            return frames[1] / fps, f"{frames[1]:g} frames at {fps:g} fps"
    return None


def estimate_cost(price: Price | None, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> Estimate:
    """The job's cost in dollars from its price and arguments (defaults filled from `schema`): an amount of at
    least $0, or unknown with the reason."""
    if price is None:
        return Estimate(None, "price unknown: RunComfy's catalog gives no price for this model")
    if usd_amount(price.usd) is None:
        return Estimate(None, f"price unknown: RunComfy's catalog gives {price.usd!r} as the price, not an amount")
    try:
        usd, basis = _estimate(price, arguments, schema)
    except _NotALength as exc:
        return Estimate(None, f"price unknown: {price.words()}, and {exc.words}")
    if usd is not None and usd_amount(usd) is None:  # too large to be a number (1e308 s × 1e308 outputs)
        return Estimate(None, f"price unknown: {price.words()}, and these arguments make no sensible amount")
    return Estimate(usd, basis)


def _estimate(price: Price, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[float | None, str]:
    unit = _unit(price.unit)
    count_found = _first(_COUNT_FIELDS, arguments, schema)
    count = max(1.0, count_found[1]) if count_found else 1.0
    times = f" × {count:g} outputs" if count != 1 else ""
    if unit in _PER_OUTPUT or unit == "":
        return round(price.usd * count, 6), f"{price.words()}{times}"
    if unit in _PER_SECOND | _PER_MINUTE:
        length = _seconds(arguments, schema)
        if length is None:
            return None, f"price unknown: {price.words()}, and the length of this job cannot be told"
        per_second = price.usd / (60 if unit in _PER_MINUTE else 1)
        return round(per_second * length[0] * count, 6), f"{price.words()} × {length[1]}{times}"
    if unit in _PER_CHARACTER | _PER_1K_CHARACTERS:
        text = next((arguments[f] for f in _TEXT_FIELDS if isinstance(arguments.get(f), str)), None)
        if text is None:
            return None, f"price unknown: {price.words()}, and this job has no text to count"
        per_char = price.usd / (1000 if unit in _PER_1K_CHARACTERS else 1)
        return round(per_char * len(text), 6), f"{price.words()} × {len(text)} characters"
    return None, f"price unknown: RunComfy prices this model in a unit this server does not know ({unit!r})"


def negative_priced_numbers(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Problems with the arguments that set a job's length or count, by field: none of them may be negative."""
    return {
        field: f"{field}: {value!r} is negative; a length, count or frame rate must be 0 or more."
        for field, value in arguments.items()
        if field in PRICED_NUMBER_FIELDS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value < 0
        and math.isfinite(value)
    }
