"""Prepares a call's media inputs: load each one, apply the schema's `validations`, keep the request in bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runcomfy_mcp.domain.media_rules import FORMAT_NAMES, MIB, MediaKind, MediaRule, broken_rules, size_cap
from runcomfy_mcp.domain.specs import ToolSpec
from runcomfy_mcp.errors import MediaError, MediaTooLargeError
from runcomfy_mcp.media.sources import DEFAULT_MAX_BYTES, REQUEST_CAP, SHRINK_HINT, MediaLoader, describe_source


@dataclass
class PreparedInputs:
    arguments: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class InputPreparer:
    def __init__(self, loader: MediaLoader) -> None:
        self.loader = loader

    async def prepare(
        self, spec: ToolSpec, arguments: Mapping[str, Any], skip: set[str], owner: str = "local"
    ) -> PreparedInputs:
        """`owner` is whose fetches these are: each caller has a bounded number in flight."""
        prepared = PreparedInputs(dict(arguments))
        for name, kind in spec.media_fields().items():
            value = arguments.get(name)
            if value is None or name in skip:
                continue
            is_list = isinstance(value, list)
            items = value if is_list else [value]
            sent = [
                await self._prepare_item(spec, name, kind, f"{name}[{i}]" if is_list else name, item, prepared, owner)
                for i, item in enumerate(items)
            ]
            prepared.arguments[name] = sent if is_list else sent[0]
        inline = sum(len(v) for v in _strings(prepared.arguments) if v[:5].lower() == "data:")
        if inline > REQUEST_CAP:
            prepared.problems.append(
                f"(all inputs): the inlined files add up to {inline / MIB:.1f} MB, over the {REQUEST_CAP // MIB} MB "
                "a request may carry. Use https:// URLs for some of them, or send smaller files."
            )
        return prepared

    async def _prepare_item(
        self, spec: ToolSpec, name: str, kind: MediaKind, label: str, item: Any, out: PreparedInputs, owner: str
    ) -> Any:
        rules = spec.media_rules(name)
        if not isinstance(item, str):
            return item  # the schema check reports it
        try:
            cap = size_cap(rules, DEFAULT_MAX_BYTES[kind])
            loaded = await self.loader.load(item, max_bytes=cap, owner=owner, kind=kind)
        except MediaTooLargeError as exc:
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
        return f"{label}: {size_rule.validation_error} (got {exc.size_bytes / MIB:.2f} MB) {SHRINK_HINT}"


def _strings(arguments: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for value in arguments.values():
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    return found
