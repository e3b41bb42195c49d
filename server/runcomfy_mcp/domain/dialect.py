"""RunComfy's dialect of JSON Schema, made standard.

Catalog schemas use types JSON Schema does not have (`"float"`), `"default": null` on optional
fields, and rules of their own (`validations`). This turns one into a schema that a JSON Schema
validator accepts, keeping enums, limits, real defaults, `format: image_uri | video_uri | audio_uri`
and the `validations` it can check (the tool spec turns those into words for clients). A schema
that cannot be understood raises DialectError naming the field and why.
"""

from __future__ import annotations

import copy
from typing import Any

from runcomfy_mcp.domain.media_rules import RULE_PATTERN
from runcomfy_mcp.domain.patterns import linear_pattern
from runcomfy_mcp.errors import DialectError

_TYPE_ALIASES = {
    "float": "number",
    "double": "number",
    "decimal": "number",
    "number": "number",
    "int": "integer",
    "integer": "integer",
    "long": "integer",
    "str": "string",
    "string": "string",
    "text": "string",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "dict": "object",
    "object": "object",
    "null": "null",
}
_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def standard_schema(schema: Any) -> dict[str, Any]:
    """A copy of a RunComfy input schema in standard JSON Schema (2020-12), or DialectError."""
    if not isinstance(schema, dict):
        raise DialectError(f"the input schema is {type(schema).__name__}, not an object")
    result = copy.deepcopy(schema)
    result.setdefault("type", "object")
    if result["type"] != "object" or not isinstance(result.get("properties"), dict):
        raise DialectError("the input schema is not an object schema with 'properties'")
    required = result.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise DialectError("'required' is not a list of field names")
    result["required"] = [r for r in required if r in result["properties"]]
    for name, prop in result["properties"].items():
        if not isinstance(prop, dict):
            raise DialectError(f"field {name!r} has no schema object")
        _standardize(prop, name)
        if "validations" in prop:
            _sort_rules(prop, name)
    _check(result)
    return result


def _standardize(node: dict[str, Any], where: str) -> None:
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = _standard_type(kind, where)
    elif isinstance(kind, list):
        node["type"] = [_standard_type(k, where) for k in kind]
    elif kind is not None:
        raise DialectError(f"field {where!r} has a type that is neither a name nor a list")
    if node.get("default", 0) is None:
        del node["default"]  # "no default": saying null would tell clients null is a value to send
    _keep_linear_patterns(node)
    for key in _SUBSCHEMA_KEYS:
        if isinstance(node.get(key), dict):
            _standardize(node[key], where)
    for key in _SUBSCHEMA_LISTS:
        for sub in node.get(key) or []:
            if isinstance(sub, dict):
                _standardize(sub, where)
    if isinstance(node.get("properties"), dict):
        for name, sub in node["properties"].items():
            if isinstance(sub, dict):
                _standardize(sub, f"{where}.{name}")


UNCHECKED_PATTERN_WORDS = "Its format is checked by RunComfy only."


def _keep_linear_patterns(node: dict[str, Any]) -> None:
    """Patterns are matched in linear time here (RE2): one that engine cannot take is RunComfy's to check."""
    if "pattern" in node and linear_pattern(node["pattern"]) is None:
        del node["pattern"]
        _add_words(node, UNCHECKED_PATTERN_WORDS)
    keyed = node.get("patternProperties")
    if isinstance(keyed, dict):
        node["patternProperties"] = {k: v for k, v in keyed.items() if linear_pattern(k) is not None}


def _add_words(node: dict[str, Any], words: str) -> None:
    description = node.get("description")
    node["description"] = f"{description.strip()} {words}" if isinstance(description, str) and description else words


def _standard_type(kind: Any, where: str) -> str:
    standard = _TYPE_ALIASES.get(str(kind).lower())
    if standard is None:
        raise DialectError(f"field {where!r} has type {kind!r}, which is not a JSON type this server understands")
    return standard


def _sort_rules(prop: dict[str, Any], name: str) -> None:
    """Rules this server can check stay; others are shown to the assistant in their own words."""
    rules = prop["validations"]
    if not isinstance(rules, list):
        raise DialectError(f"field {name!r} has 'validations' that is not a list")
    kept: list[dict[str, Any]] = []
    unchecked: list[str] = []
    for rule in rules:
        if (
            isinstance(rule, dict)
            and RULE_PATTERN.match(str(rule.get("validation_rule", "")))
            and isinstance(rule.get("validation_value"), int | float)
            and not isinstance(rule.get("validation_value"), bool)
            and isinstance(rule.get("validation_error"), str)
        ):
            kept.append(rule)
        elif isinstance(rule, dict) and isinstance(rule.get("validation_error"), str):
            unchecked.append(rule["validation_error"].strip())
    prop["validations"] = kept
    if unchecked:
        words = " ".join(u if u.endswith(".") else f"{u}." for u in unchecked if u)
        prop["description"] = f"{prop.get('description', '').strip()} Also: {words}".strip()


def _check(schema: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        # No format checks on the schema itself: its `pattern`s are RE2's (above), which Python's `re` need not read.
        Draft202012Validator.check_schema(schema, format_checker=None)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise DialectError(f"the input schema is not valid JSON Schema at {where}: {exc.message}") from exc
