"""Prepares a call's media inputs: load each one, apply the schema's `validations`, keep the request in bounds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runcomfy_mcp.domain.amounts import MIB, file_size
from runcomfy_mcp.domain.media_rules import FORMAT_NAMES, MediaRule, broken_rules, size_cap
from runcomfy_mcp.domain.specs import ArgumentPath, MediaInput, ToolSpec, with_values
from runcomfy_mcp.errors import MediaError, MediaTooLargeError
from runcomfy_mcp.media.sources import DEFAULT_MAX_BYTES, REQUEST_CAP, SHRINK_HINT, MediaLoader, describe_source


@dataclass
class PreparedInputs:
    """A call's arguments as they will be sent, and the problems and notes of making them so (loading media here,
    inlining frames of earlier jobs in core/frame_inputs)."""

    arguments: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class InputPreparer:
    def __init__(self, loader: MediaLoader) -> None:
        self.loader = loader

    async def prepare(
        self, spec: ToolSpec, arguments: Mapping[str, Any], skip: set[str], owner: str = "local"
    ) -> PreparedInputs:
        """`owner` is whose fetches these are: each caller has a bounded number in flight. Media fields are found
        wherever the schema puts them (in arrays, in objects inside arrays); fields in `skip` were already refused."""
        prepared = PreparedInputs(dict(arguments))
        sent: dict[ArgumentPath, Any] = {}
        for media in spec.media_inputs(arguments, skip):
            replacement = await self._prepare_item(spec, media, prepared, owner)
            if replacement != media.value:
                sent[media.path] = replacement
        prepared.arguments = with_values(arguments, sent)
        inline = sum(len(v) for v in _strings(prepared.arguments) if v[:5].lower() == "data:")
        if inline > REQUEST_CAP:
            prepared.problems.append(
                f"(all inputs): the inlined files add up to {file_size(inline)}, over the {file_size(REQUEST_CAP)} "
                "a request may carry. Use https:// URLs for some of them, or send smaller files."
            )
        return prepared

    async def _prepare_item(self, spec: ToolSpec, media: MediaInput, out: PreparedInputs, owner: str) -> Any:
        label, item, rules = media.label, media.value, list(media.rules)
        try:
            cap = size_cap(rules, DEFAULT_MAX_BYTES[media.kind])
            loaded = await self.loader.load(item, max_bytes=cap, owner=owner, kind=media.kind)
        except MediaTooLargeError as exc:
            out.problems.append(self._too_large(label, item, exc, rules))
            return item
        except MediaError as exc:
            out.problems.append(f"{label}: {describe_source(item)} {exc.reason}".rstrip(".") + ".")
            return item
        formats = spec.accepted_formats.get(media.field) if len(media.path) <= 2 else None  # the spec's own fields
        if formats and loaded.facts.format not in formats:
            allowed = " or ".join(FORMAT_NAMES[f] for f in formats)
            out.problems.append(
                f"{label}: this model accepts {allowed} images only, and {describe_source(item)} is "
                f"{loaded.facts.format_name}. Convert it to {allowed} and try again."
            )
        out.problems.extend(f"{label}: {message}" for message in broken_rules(loaded.facts, rules))
        if loaded.note:
            out.notes.append(f"{label}: {loaded.note}")
        return loaded.send_as

    @staticmethod
    def _too_large(label: str, item: str, exc: MediaTooLargeError, rules: list[MediaRule]) -> str:
        size_rule = next((r for r in rules if r.measure == "file_size_mb"), None)
        if size_rule is None or size_rule.validation_value * MIB > exc.size_bytes:  # the inline limit, not the rule
            return f"{label}: {describe_source(item)} {exc.reason}"
        return f"{label}: {size_rule.validation_error} (got {file_size(exc.size_bytes)}) {SHRINK_HINT}"


def _strings(value: Any) -> Iterator[str]:
    """Every string in the arguments, at any depth (bounded: the arguments were measured before)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
