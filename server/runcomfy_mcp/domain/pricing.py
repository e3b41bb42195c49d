"""What a job will cost, from the catalog's price (`base_price_usd` per `price_unit`) and the call's arguments.

Units this server understands: per output (image, video, generation, request…), per second or minute
of output (from `duration`, or frames at the model's frame rate), per character or thousand
characters of text. Anything else is "price unknown" — said honestly, never guessed.
"""

from __future__ import annotations

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
DEFAULT_FPS = 24.0  # Dreamina's 121 frames ≈ 5 s


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str | None

    def words(self) -> str:
        return f"{money(self.usd)} per {self.unit.replace('_', ' ')}" if self.unit else f"{money(self.usd)} a job"


@dataclass(frozen=True)
class Estimate:
    usd: float | None  # None: price unknown
    basis: str  # how it was reached, or why it is unknown

    @property
    def known(self) -> bool:
        return self.usd is not None


def _unit(unit: str | None) -> str:
    text = (unit or "").strip().lower().removeprefix("per ").removeprefix("/").strip()
    return re.sub(r"[\s-]+", "_", text)


def _number(value: Any) -> float | None:
    """A count or a length given as a number or a numeric string ("5", "5s", "10 sec")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\s*", value.lower())
        return float(match[1]) if match else None
    return None


def _given(field: str, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> float | None:
    """An argument's value, or the schema's default when it was left out."""
    if field in arguments:
        return _number(arguments[field])
    prop = schema.get("properties", {}).get(field)
    return _number(prop.get("default")) if isinstance(prop, Mapping) else None


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
            fps = _given("fps", arguments, schema) or DEFAULT_FPS
            return frames[1] / fps, f"{frames[1]:g} frames at {fps:g} fps"
    return None


def estimate_cost(price: Price | None, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> Estimate:
    """The job's cost in dollars from its price and arguments (defaults filled from `schema`)."""
    if price is None:
        return Estimate(None, "price unknown: RunComfy's catalog gives no price for this model")
    unit = _unit(price.unit)
    count_found = _first(_COUNT_FIELDS, arguments, schema)
    count = max(1.0, count_found[1]) if count_found else 1.0
    times = f" × {count:g} outputs" if count != 1 else ""
    if unit in _PER_OUTPUT or unit == "":
        return Estimate(round(price.usd * count, 6), f"{price.words()}{times}")
    if unit in _PER_SECOND | _PER_MINUTE:
        length = _seconds(arguments, schema)
        if length is None:
            return Estimate(None, f"price unknown: {price.words()}, and the length of this job cannot be told")
        per_second = price.usd / (60 if unit in _PER_MINUTE else 1)
        return Estimate(round(per_second * length[0] * count, 6), f"{price.words()} × {length[1]}{times}")
    if unit in _PER_CHARACTER | _PER_1K_CHARACTERS:
        text = next((arguments[f] for f in _TEXT_FIELDS if isinstance(arguments.get(f), str)), None)
        if text is None:
            return Estimate(None, f"price unknown: {price.words()}, and this job has no text to count")
        per_char = price.usd / (1000 if unit in _PER_1K_CHARACTERS else 1)
        return Estimate(round(per_char * len(text), 6), f"{price.words()} × {len(text)} characters")
    return Estimate(None, f"price unknown: RunComfy prices this model in a unit this server does not know ({unit!r})")
