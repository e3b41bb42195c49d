"""Prepares a call's image inputs: load each one, apply the spec's `validations`, keep the request in bounds.

One generic interpreter for every rule kind the model pages use (`width_pixels<`, `width/height<=`,
`file_size_mb<`, ...): the spec file says what to check, not code per model.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runcomfy_mcp.core.specs import MediaRule, ToolSpec
from runcomfy_mcp.media.images import (
    DEFAULT_MAX_IMAGE_BYTES,
    FORMAT_NAMES,
    MIB,
    REQUEST_CAP,
    SHRINK_HINT,
    ImageFacts,
    ImageLoader,
    ImageTooLargeError,
    MediaError,
    describe_source,
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MEASURES: dict[str, Callable[[ImageFacts], float]] = {
    "width_pixels": lambda f: f.width,
    "height_pixels": lambda f: f.height,
    "shortest_side_pixels": lambda f: min(f.width, f.height),
    "longest_side_pixels": lambda f: max(f.width, f.height),
    "width/height": lambda f: f.width / f.height,
    "file_size_mb": lambda f: f.size_mb,
}


def _measured(measure: str, facts: ImageFacts) -> str:
    if measure == "file_size_mb":
        return f"got {facts.size_mb:.2f} MB"
    if measure == "width/height":
        return f"got {facts.width}×{facts.height}, ratio {facts.width / facts.height:.2f}"
    return f"got {facts.width}×{facts.height}"


def broken_rules(facts: ImageFacts, rules: list[MediaRule]) -> list[str]:
    """The page's own words for each rule the image breaks, once per distinct message, with what was measured."""
    messages: list[str] = []
    for rule in rules:
        if not _OPS[rule.op](_MEASURES[rule.measure](facts), rule.validation_value):
            text = f"{rule.validation_error} ({_measured(rule.measure, facts)})"
            if text not in messages:
                messages.append(text)
    return messages


def size_cap(rules: list[MediaRule]) -> int:
    caps = [int(r.validation_value * MIB) for r in rules if r.measure == "file_size_mb" and r.op in ("<", "<=")]
    return min(caps, default=DEFAULT_MAX_IMAGE_BYTES)


@dataclass
class PreparedInputs:
    arguments: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class InputPreparer:
    def __init__(self, loader: ImageLoader) -> None:
        self.loader = loader

    async def prepare(
        self, spec: ToolSpec, arguments: Mapping[str, Any], skip: set[str], owner: str = "local"
    ) -> PreparedInputs:
        """`owner` is whose fetches these are: each caller has a bounded number in flight."""
        prepared = PreparedInputs(dict(arguments))
        for name in spec.media_fields():
            value = arguments.get(name)
            if value is None or name in skip:
                continue
            is_list = isinstance(value, list)
            items = value if is_list else [value]
            sent = [
                await self._prepare_item(spec, name, f"{name}[{i}]" if is_list else name, item, prepared, owner)
                for i, item in enumerate(items)
            ]
            prepared.arguments[name] = sent if is_list else sent[0]
        inline = sum(len(v) for v in _strings(prepared.arguments) if v[:5].lower() == "data:")
        if inline > REQUEST_CAP:
            prepared.problems.append(
                f"(all images): the inlined images add up to {inline / MIB:.1f} MB, over the {REQUEST_CAP // MIB} MB "
                "a request may carry. Use https:// URLs for some of them, or send smaller files."
            )
        return prepared

    async def _prepare_item(
        self, spec: ToolSpec, name: str, label: str, item: Any, out: PreparedInputs, owner: str
    ) -> Any:
        rules = spec.media_rules(name)
        if not isinstance(item, str):
            return item  # the schema check reports it
        try:
            loaded = await self.loader.load(item, max_bytes=size_cap(rules), owner=owner)
        except ImageTooLargeError as exc:
            out.problems.append(self._too_large(label, item, exc, rules))
            return item
        except MediaError as exc:
            out.problems.append(f"{label}: {describe_source(item)} {exc.reason}".rstrip(".") + ".")
            return item
        formats = spec.accepted_formats.get(name)
        if formats and loaded.facts.format not in formats:
            allowed = " or ".join(FORMAT_NAMES[f] for f in formats)
            out.problems.append(
                f"{label}: this model accepts {allowed} images only, and {describe_source(item)} is "
                f"{FORMAT_NAMES[loaded.facts.format]}. Convert it to {allowed} and try again."
            )
        out.problems.extend(f"{label}: {message}" for message in broken_rules(loaded.facts, rules))
        if loaded.note:
            out.notes.append(f"{label}: {loaded.note}")
        return loaded.send_as

    @staticmethod
    def _too_large(label: str, item: str, exc: ImageTooLargeError, rules: list[MediaRule]) -> str:
        size_rule = next((r for r in rules if r.measure == "file_size_mb"), None)
        if size_rule is None:
            return f"{label}: {describe_source(item)} {exc.reason}"
        return f"{label}: {size_rule.validation_error} (got {exc.size_bytes / MIB:.2f} MB) {SHRINK_HINT}"


def _strings(arguments: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for value in arguments.values():
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    return found
