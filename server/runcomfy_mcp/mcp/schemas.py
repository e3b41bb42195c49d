"""The JSON Schemas clients are shown for the built-in tools, made from pydantic models and kept small.

Every tool's schema is context an assistant pays for on every turn, so titles (the field name
again), `null` arms of optional inputs and the output fields' prose are left out; the text of
each result says in words what its fields mean.
"""

from __future__ import annotations

import functools
from typing import Any

import mcp_types as types
from pydantic import BaseModel


@functools.cache
def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """An arguments model's schema: optional inputs are simply left out, so their `null` arm goes."""
    schema: dict[str, Any] = _compact(model.model_json_schema(), nullable=False)
    return schema


@functools.cache
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A view's schema for structured content: types and required fields only, `null` kept where it can occur."""
    raw = model.model_json_schema(mode="serialization")
    definitions = raw.pop("$defs", {})
    schema: dict[str, Any] = _shallow(_compact(_inline(raw, definitions), nullable=True, prose=False), depth=0)
    return schema


def _shallow(node: Any, depth: int) -> Any:
    """Objects nested past the second level are just objects: their shape is in the result, not worth a turn."""
    if not isinstance(node, dict):
        return node
    if depth >= 3 and node.get("type") == "object":
        return {"type": "object"}
    return {
        key: {name: _shallow(sub, depth + 1) for name, sub in value.items()}
        if key == "properties" and isinstance(value, dict)
        else _shallow(value, depth + 1)
        if key == "items"
        else value
        for key, value in node.items()
    }


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    return {key: _inline(value, definitions) for key, value in node.items()}


def _compact(node: Any, *, nullable: bool, prose: bool = True) -> Any:
    if isinstance(node, list):
        return [_compact(item, nullable=nullable, prose=prose) for item in node]
    if not isinstance(node, dict):
        return node
    dropped = {"title"} if prose else {"title", "description", "default"}
    node = {
        # under "properties" the keys are field names (a field may be called "description"), not keywords
        k: {name: _compact(sub, nullable=nullable, prose=prose) for name, sub in v.items()}
        if k == "properties" and isinstance(v, dict)
        else _compact(v, nullable=nullable, prose=prose)
        for k, v in node.items()
        if k not in dropped
    }
    arms = node.get("anyOf")
    if isinstance(arms, list) and len(arms) == 2 and {"type": "null"} in arms:
        (kept,) = [arm for arm in arms if arm != {"type": "null"}]
        del node["anyOf"]
        if nullable and isinstance(kept.get("type"), str):
            kept = {**kept, "type": [kept["type"], "null"]}
        elif nullable:
            return {**node, "anyOf": [kept, {"type": "null"}]}
        node = {**kept, **node}
        if node.get("default", ...) is None:
            del node["default"]
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]  # JSON Schema's own default
    return node


# What MCP assumes when a hint is absent; saying it again costs every turn.
_HINT_DEFAULTS = {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False, "open_world_hint": True}


def hints(
    *, read_only: bool, destructive: bool = False, idempotent: bool, open_world: bool = True
) -> types.ToolAnnotations:
    """Tool annotations, only those that differ from MCP's defaults (a read-only tool's destructiveness is moot)."""
    given = {
        "read_only_hint": read_only,
        "destructive_hint": destructive,
        "idempotent_hint": idempotent,
        "open_world_hint": open_world,
    }
    if read_only:
        del given["destructive_hint"]
    return types.ToolAnnotations.model_validate({k: v for k, v in given.items() if _HINT_DEFAULTS[k] != v})
