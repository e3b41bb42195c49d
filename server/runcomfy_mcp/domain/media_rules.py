"""Media rules in one place: what a model page's `validations` say, in words and as checks.

A `validations` entry is `{"validation_rule": "<measure><op>", "validation_value": N,
"validation_error": "<message>"}`; the rule holds when `measure op value` is true. One generic
interpreter serves every model: the schema says what to check, not code per model.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from runcomfy_mcp.domain.amounts import MIB, file_size

MediaKind = Literal["image", "video", "audio"]
ImageFormat = Literal["jpeg", "png", "webp"]  # the image formats whose size this server can read
FORMAT_NAMES: dict[str, str] = dict(zip(get_args(ImageFormat), ("JPEG", "PNG", "WebP"), strict=True))

RULE_PATTERN = re.compile(
    r"^(?P<measure>width_pixels|height_pixels|shortest_side_pixels|longest_side_pixels|width/height|file_size_mb)"
    r"(?P<op><=|>=|<|>)$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_OP_WORDS = {"<": "less than", "<=": "at most", ">": "more than", ">=": "at least"}


class MediaRule(BaseModel):
    """One entry of a field's `validations` list: holds when `measure op value` is true."""

    model_config = ConfigDict(extra="allow", frozen=True)

    validation_rule: str = Field(pattern=RULE_PATTERN.pattern)
    validation_value: float
    validation_error: str

    @property
    def measure(self) -> str:
        match = RULE_PATTERN.match(self.validation_rule)
        assert match is not None  # guaranteed by the field pattern
        return match["measure"]

    @property
    def op(self) -> str:
        match = RULE_PATTERN.match(self.validation_rule)
        assert match is not None
        return match["op"]


@dataclass(frozen=True)
class MediaFacts:
    """What was learnt about one input from its bytes. Width and height are 0 when not known (video, audio)."""

    kind: MediaKind
    format: str  # jpeg, png, webp, mp4, webm, mp3, wav, ...
    size_bytes: int
    width: int = 0
    height: int = 0
    mime: str = ""

    @property
    def size_mb(self) -> float:
        return self.size_bytes / MIB

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format, self.format.upper())


_MEASURES: dict[str, Callable[[MediaFacts], float]] = {
    "width_pixels": lambda f: f.width,
    "height_pixels": lambda f: f.height,
    "shortest_side_pixels": lambda f: min(f.width, f.height),
    "longest_side_pixels": lambda f: max(f.width, f.height),
    "width/height": lambda f: f.width / f.height,
    "file_size_mb": lambda f: f.size_mb,
}


def _measured(measure: str, facts: MediaFacts) -> str:
    if measure == "file_size_mb":
        return f"got {file_size(facts.size_bytes)}"
    if measure == "width/height":
        return f"got {facts.width}×{facts.height}, an aspect ratio of {facts.width / facts.height:.2f}"
    return f"got {facts.width}×{facts.height}"


def broken_rules(facts: MediaFacts, rules: Sequence[MediaRule]) -> list[str]:
    """The page's own words for each rule the input breaks, once per distinct message, with what was measured.
    Pixel rules are skipped when the dimensions are unknown (a video's or a sound's)."""
    messages: list[str] = []
    for rule in rules:
        if rule.measure != "file_size_mb" and not (facts.width and facts.height):
            continue
        if not _OPS[rule.op](_MEASURES[rule.measure](facts), rule.validation_value):
            text = f"{rule.validation_error} ({_measured(rule.measure, facts)})"
            if text not in messages:
                messages.append(text)
    return messages


def size_cap(rules: Sequence[MediaRule], default: int) -> int:
    """The largest file the rules allow, or `default` when they set no size."""
    caps = [int(r.validation_value * MIB) for r in rules if r.measure == "file_size_mb" and r.op in ("<", "<=")]
    return min(caps, default=default)


def _bounds(rules: Sequence[MediaRule], measure: str) -> list[str]:
    picked = sorted((r for r in rules if r.measure == measure), key=lambda r: r.op.startswith("<"))
    return [f"{_OP_WORDS[r.op]} {r.validation_value:g}" for r in picked]


def describe_media_rules(rules: Sequence[MediaRule], formats: Sequence[str] | None = None) -> str:
    """Plain words for a field's `validations`, e.g. 'each side more than 300 and less than 6000 px'."""
    parts: list[str] = []
    width, height = _bounds(rules, "width_pixels"), _bounds(rules, "height_pixels")
    if width and width == height:
        parts.append(f"each side {' and '.join(width)} px")
    else:
        if width:
            parts.append(f"width {' and '.join(width)} px")
        if height:
            parts.append(f"height {' and '.join(height)} px")
    for measure, label, unit in (
        ("shortest_side_pixels", "shortest side", " px"),
        ("longest_side_pixels", "longest side", " px"),
        ("width/height", "aspect ratio", ""),  # width ÷ height, as a page writes it
        ("file_size_mb", "file size", " MB"),
    ):
        bounds = _bounds(rules, measure)
        if bounds:
            parts.append(f"{label} {' and '.join(bounds)}{unit}")
    if formats:
        parts.append(" or ".join(FORMAT_NAMES.get(f, f.upper()) for f in formats) + " only")
    return "; ".join(parts)
