"""Checks a model tool's arguments against its schema before anything is sent.

Assistants improvise: "5" for an integer, a lone URL where a list is wanted. Those are coerced
when the meaning is unambiguous; everything else that breaks the schema is reported, all
problems at once, each naming the field, the value and what is allowed. Schemas may come from
the catalog: patterns are matched in linear time, and arguments too big to check in a moment are
refused by their size before any schema work. A number that is not finite (NaN or infinity, from
"nan" or a bare NaN in the JSON) is refused wherever it is: it passes `minimum` and `maximum`, and
would pass every spending limit after them.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from runcomfy_mcp.domain.bounds import measure
from runcomfy_mcp.domain.patterns import linear_validator
from runcomfy_mcp.domain.pricing import negative_priced_numbers
from runcomfy_mcp.domain.specs import ToolSpec, portable_input_schema

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_MAX_SHOWN = 80
MAX_ARGUMENT_VALUES = 10_000  # far past any model's inputs (arrays hold at most a few dozen items)
MAX_ARGUMENT_DEPTH = 32
MAX_PROBLEMS = 20  # reported at once; a million bad items need not make a million messages
_JSON_TYPE = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


def _field_name(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(arguments)"


def _primary_type(kind: Any) -> Any:
    """The type a value is coerced to: the only one besides null (`["integer", "null"]`), and never one that would
    turn a string that is already allowed into something else."""
    if not isinstance(kind, list):
        return kind
    kinds = [k for k in kind if k != "null"]
    return "string" if "string" in kinds or len(kinds) != 1 else kinds[0]


def _not_finite(arguments: Mapping[str, Any]) -> Iterator[tuple[str, str, float]]:
    """Every NaN or infinity in the arguments: its argument, its path and itself (walked without recursion, so any
    depth is safe)."""
    stack: list[tuple[str, str, Any]] = [(str(k), str(k), v) for k, v in reversed(list(arguments.items()))]
    while stack:
        field, path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield field, path, value
        elif isinstance(value, Mapping):
            stack.extend((field, f"{path}.{k}", v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((field, f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))


def _coerce(value: Any, prop: Mapping[str, Any]) -> Any:
    kind = _primary_type(prop.get("type"))
    if isinstance(value, str):
        text = value.strip()
        if kind == "integer" and text.lstrip("-").isdigit():
            return int(text)
        if kind == "number":
            try:
                return float(text)
            except ValueError:
                return value
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "array" and (prop.get("items") or {}).get("type") == "string":
            return [value]
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class CheckedArguments:
    arguments: dict[str, Any]
    problems: list[str]
    fields_with_problems: set[str]
    # The required top-level inputs not given, each with the problem said about it: a quote can do without them.
    missing: dict[str, str] = field(default_factory=dict)


class ArgumentChecker:
    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec

    @cached_property
    def _validator(self) -> Draft202012Validator:
        validator: Draft202012Validator = linear_validator()(portable_input_schema(self.spec))
        return validator

    def check(self, arguments: Mapping[str, Any] | None) -> CheckedArguments:
        """The arguments, coerced where unambiguous, and every way they break the schema (the first
        MAX_PROBLEMS of them)."""
        args = dict(arguments or {})
        size = measure(args, stop_after=MAX_ARGUMENT_VALUES)
        if not size.within(depth=MAX_ARGUMENT_DEPTH, values=MAX_ARGUMENT_VALUES):
            return CheckedArguments(args, [_too_big(size.depth)], set(args))
        properties = self.spec.properties
        for name, value in args.items():
            if name in properties:
                args[name] = _coerce(value, properties[name])
        non_finite = list(itertools.islice(_not_finite(args), MAX_PROBLEMS))
        negative = negative_priced_numbers(args)
        problems = [
            f"{path}: {_show(value)} is not a finite number; give an ordinary number." for _, path, value in non_finite
        ]
        problems += negative.values()
        fields = {field for field, _, _ in non_finite} | set(negative)
        said = {path for _, path, _ in non_finite} | set(negative)  # one problem per value is enough
        found = (e for e in self._validator.iter_errors(args) if _field_name(e) not in said)
        errors = sorted(itertools.islice(found, MAX_PROBLEMS), key=_field_name)
        fields |= {str(e.absolute_path[0]) for e in errors if e.absolute_path}
        described = [(e, self._describe(e)) for e in errors]
        missing = {
            _missing_field(e): text for e, text in described if e.validator == "required" and not e.absolute_path
        }
        return CheckedArguments(args, problems + [text for _, text in described], fields, missing)

    def _describe(self, error: ValidationError) -> str:
        field = _field_name(error)
        value = error.instance
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        kind = error.validator
        if kind == "required":
            missing = _missing_field(error)
            return f"{missing}: missing; it is required ({self._allowed(missing)})."
        if kind == "additionalProperties":
            extras = sorted(set(value) - set(self.spec.properties))
            accepted = ", ".join(self.spec.properties)
            return f"{', '.join(extras)}: not a parameter of this model; it accepts: {accepted}."
        if kind == "enum":
            allowed = ", ".join(_show(v) for v in schema.get("enum", []))
            return f"{field}: {_show(value)} is not allowed; allowed values: {allowed}."
        if kind == "type":
            given = _JSON_TYPE.get(type(value), "a value")
            return f"{field}: {_show(value)} is {given}, but it must be {_article(schema.get('type'))}."
        if kind == "maxLength":
            return f"{field}: {len(value)} characters is too long; at most {schema['maxLength']} are allowed."
        if kind == "minLength":
            return f"{field}: too short; at least {schema['minLength']} characters are needed."
        if kind == "minItems":
            return f"{field}: {len(value)} item(s) given; at least {schema['minItems']} needed."
        if kind == "maxItems":
            return f"{field}: {len(value)} items given; at most {schema['maxItems']} allowed."
        if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return f"{field}: {_show(value)} is out of range ({kind} {schema[kind]})."
        return f"{field}: {_show(value)} is not allowed: {error.message}."

    def _allowed(self, field: str) -> str:
        prop = self.spec.properties.get(field, {})
        if "enum" in prop:
            return "one of " + ", ".join(_show(v) for v in prop["enum"])
        return _article(prop.get("type", "value"))


def _missing_field(error: ValidationError) -> str:
    message = str(error.message)
    return message.split("'")[1] if "'" in message else message


def _too_big(depth: int) -> str:
    if depth > MAX_ARGUMENT_DEPTH:
        return f"(arguments): nested {depth} levels deep, more than the {MAX_ARGUMENT_DEPTH} any model takes."
    return (
        f"(arguments): they hold more than {MAX_ARGUMENT_VALUES:,} values, far more than any model takes. Send "
        "only the model's own fields (describe_model lists them)."
    )


def _article(kind: object) -> str:
    if isinstance(kind, list):  # ["integer", "null"]: "an integer or null"
        return " or ".join("null" if k == "null" else _article(k) for k in kind)
    text = str(kind)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"
