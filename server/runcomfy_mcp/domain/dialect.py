"""RunComfy's dialect of JSON Schema, made standard.

Catalog schemas use types JSON Schema does not have (`"float"`), `"default": null` on optional
fields, and rules of their own (`validations`). This turns one into a schema that a JSON Schema
validator accepts, keeping enums, limits, real defaults, `format: image_uri | video_uri | audio_uri`
and the `validations` it can check (the tool spec turns those into words for clients). A schema
that cannot be understood raises DialectError naming the field and why.

The schema is upstream data: it is measured before anything recursive touches it (MAX_DEPTH,
MAX_VALUES), and local `$ref`s are followed into a copy that has none — a loop, a reference
outside the schema or an expansion past those bounds is a DialectError, never a crash.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from runcomfy_mcp.domain.bounds import clipped, measure
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
# Where a schema holds other schemas (everything else in it is data: enums, defaults, validations…)
_SCHEMA_VALUED = (*_SUBSCHEMA_KEYS, "propertyNames", "additionalItems", "unevaluatedItems", "unevaluatedProperties")
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_DEFINITIONS = ("$defs", "definitions")
MAX_DEPTH = 32  # levels of JSON: an object field inside an array item inside an object is 6
MAX_VALUES = 20_000
# Texts are shown to assistants (describe_model, tools/list): each is cut, and the whole is bounded.
TEXT_CAPS = {"description": 500, "title": 120}
MAX_FIELDS = 100  # per object
MAX_FIELD_NAME = 100
MAX_DATA_CHARS = 1_000  # a default, a const, and the examples together, as JSON
MAX_EXAMPLES = 3
MAX_ENUM_VALUES = 200
MAX_ENUM_CHARS = 8_000
MAX_RULES = 20
MAX_RULE_WORDS = 300
MAX_SCHEMA_CHARS = 32 * 1024
ARRAY_CAP = 16  # items of an array whose schema sets no maxItems, as RunComfy's own nodes cap them


def standard_schema(schema: Any) -> dict[str, Any]:
    """A copy of a RunComfy input schema in standard JSON Schema (2020-12), or DialectError."""
    if not isinstance(schema, dict):
        raise DialectError(f"the input schema is {type(schema).__name__}, not an object")
    size = measure(schema, stop_after=MAX_VALUES)
    if size.depth > MAX_DEPTH:
        raise DialectError(f"the input schema is nested more than {MAX_DEPTH} levels deep")
    if size.values > MAX_VALUES:
        raise DialectError(f"the input schema holds more than {MAX_VALUES:,} values")
    result: dict[str, Any] = _RefInliner(schema).schema(schema, (), 0)
    result.setdefault("type", "object")
    if result["type"] != "object" or not isinstance(result.get("properties"), dict):
        raise DialectError("the input schema is not an object schema with 'properties'")
    required = result.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise DialectError("'required' is not a list of field names")
    result["required"] = [r for r in required if r in result["properties"]]
    _check_fields(result["properties"], "(top level)")
    for name, prop in result["properties"].items():
        if not isinstance(prop, dict):
            raise DialectError(f"field {name!r} has no schema object")
        _standardize(prop, name)
    _check(result)
    chars = len(json.dumps(result))
    if chars > MAX_SCHEMA_CHARS:
        raise DialectError(
            f"the input schema is {chars // 1024} KB even with its texts shortened, more than the "
            f"{MAX_SCHEMA_CHARS // 1024} KB this server reads"
        )
    return result


def _check_fields(properties: dict[str, Any], where: str) -> None:
    if len(properties) > MAX_FIELDS:
        raise DialectError(f"{where} has {len(properties):,} fields, more than the {MAX_FIELDS} this server reads")
    for name in properties:
        if len(name) > MAX_FIELD_NAME:
            raise DialectError(f"{where} has a field name of {len(name):,} characters")


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, default=str))


def _cap_texts(node: dict[str, Any]) -> None:
    """Texts cut to their caps; data too large to show (a default, a const, examples, a long enum) dropped — the
    enum with words saying RunComfy checks it."""
    for key, limit in TEXT_CAPS.items():
        if key in node:
            if isinstance(node[key], str):
                node[key] = clipped(node[key].strip(), limit)
            else:
                del node[key]
    enum = node.get("enum")
    if isinstance(enum, list) and (len(enum) > MAX_ENUM_VALUES or _json_chars(enum) > MAX_ENUM_CHARS):
        del node["enum"]
        _add_words(node, f"RunComfy checks it against its {len(enum):,} allowed values.")
    for key in ("default", "const"):
        if key in node and _json_chars(node[key]) > MAX_DATA_CHARS:
            del node[key]
    if "examples" in node:
        examples = node.pop("examples")
        kept = [e for e in examples[:MAX_EXAMPLES] if isinstance(examples, list)]
        if kept and _json_chars(kept) <= MAX_DATA_CHARS:
            node["examples"] = kept


class _RefInliner:
    """Copies a schema with each local `$ref` replaced by what it points to. Only pointers into the schema itself
    (`#/$defs/x`) are followed; one that leads back to a `$ref` still being followed is a loop."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.budget = MAX_VALUES

    def schema(self, node: Any, following: tuple[str, ...], depth: int) -> Any:
        self.budget -= 1
        if depth > MAX_DEPTH or self.budget < 0:
            why = f"nested more than {MAX_DEPTH} levels deep" if depth > MAX_DEPTH else "larger than this server reads"
            raise DialectError(f"the input schema is {why} once its $refs are followed")
        if not isinstance(node, dict):
            return copy.deepcopy(node)  # true/false schemas, or junk the schema check reports
        copied: dict[str, Any] = {}
        if "$ref" in node:
            copied.update(self._followed(node["$ref"], following, depth))
        for key, value in node.items():
            if key in ("$dynamicRef", "$recursiveRef"):
                raise DialectError(f"the input schema uses {key}, which this server does not follow")
            if key == "$ref" or key in _DEFINITIONS:
                continue  # followed above; definitions are only there to be pointed at
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                copied[key] = {name: self.schema(sub, following, depth + 2) for name, sub in value.items()}
            elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
                copied[key] = [self.schema(sub, following, depth + 2) for sub in value]
            elif key in _SCHEMA_VALUED:
                copied[key] = self.schema(value, following, depth + 1)
            else:
                copied[key] = copy.deepcopy(value)  # data; its depth was measured before
        return copied

    def _followed(self, ref: Any, following: tuple[str, ...], depth: int) -> dict[str, Any]:
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise DialectError(
                f"its $ref {str(ref)[:80]!r} points outside the schema, which this server does not follow"
            )
        if ref in following:
            raise DialectError(f"its $ref {ref[:80]!r} leads back to itself (a loop)")
        target: Any = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise DialectError(f"its $ref {ref[:80]!r} points at nothing")
        followed = self.schema(target, (*following, ref), depth)
        return followed if isinstance(followed, dict) else {}


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
    _cap_texts(node)
    _keep_linear_patterns(node)
    if "validations" in node:
        _sort_rules(node, where)
    if _is_array(node) and "maxItems" not in node:
        node["maxItems"] = ARRAY_CAP
    for key in _SUBSCHEMA_KEYS:
        if isinstance(node.get(key), dict):
            _standardize(node[key], where)
    for key in _SUBSCHEMA_LISTS:
        for sub in node.get(key) or []:
            if isinstance(sub, dict):
                _standardize(sub, where)
    if isinstance(node.get("properties"), dict):
        _check_fields(node["properties"], f"field {where!r}")
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


def _is_array(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind) or (kind is None and "items" in node)


def _standard_type(kind: Any, where: str) -> str:
    standard = _TYPE_ALIASES.get(str(kind).lower())
    if standard is None:
        shown = clipped(str(kind), 40)
        raise DialectError(f"field {where!r} has type {shown!r}, which is not a JSON type this server understands")
    return standard


def _sort_rules(prop: dict[str, Any], name: str) -> None:
    """Rules this server can check stay; others are shown to the assistant in their own words."""
    rules = prop["validations"]
    if not isinstance(rules, list):
        raise DialectError(f"field {name!r} has 'validations' that is not a list")
    kept: list[dict[str, Any]] = []
    unchecked: list[str] = []
    for rule in rules[:MAX_RULES]:
        if isinstance(rule, dict) and isinstance(rule.get("validation_error"), str):
            rule["validation_error"] = clipped(rule["validation_error"].strip(), MAX_RULE_WORDS)
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
