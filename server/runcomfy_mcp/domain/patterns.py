"""Schema `pattern`s matched in linear time, whoever wrote them.

A catalog schema is upstream data, and a backtracking engine gives `^(a+)+$` exponential time on a
short input: one caller's argument could freeze the server. RE2 (Google's engine, `google-re2`)
matches in time linear in the input and bounds its memory; a pattern it cannot compile
(lookarounds, backreferences) or one too long is not checked here at all — RunComfy still checks it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import re2  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

MAX_PATTERN_CHARS = 1000
_MAX_MEM_BYTES = 1 << 20  # per pattern, for its automata: past it RE2 slows down, never runs away


class LinearPattern(Protocol):
    def search(self, text: str) -> object | None: ...


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _MAX_MEM_BYTES
    options.log_errors = False  # a refused pattern is an answer here, not a line on stderr
    return options


@functools.lru_cache(maxsize=128)
def linear_pattern(pattern: str) -> LinearPattern | None:
    """The pattern compiled for linear-time matching, or None when it cannot be (then it is not checked here)."""
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_CHARS:
        return None
    try:
        compiled: LinearPattern = re2.compile(pattern, _options())
    except re2.error:
        return None
    return compiled


def _pattern(validator: Validator, pattern: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    compiled = linear_pattern(pattern)
    if compiled is not None and validator.is_type(instance, "string") and compiled.search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Validator, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = linear_pattern(pattern)
        if compiled is None:
            continue
        for key, value in instance.items():
            if compiled.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


@functools.cache
def linear_validator() -> type[Validator]:
    """JSON Schema 2020-12 with `pattern` and `patternProperties` matched by RE2 instead of Python's `re`."""
    from jsonschema import Draft202012Validator, validators

    extended: type[Validator] = validators.extend(
        Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
    )
    return extended
