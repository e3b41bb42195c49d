"""Tool specs: one JSON file per RunComfy model endpoint, checked with pydantic when loaded.

A spec holds the upstream input schema exactly as the model page gives it (with RunComfy's own
`validations` and `format: image_uri`), plus what the assistant needs to read: a title, a
description and English notes on the fields. `portable_input_schema` turns it into the plain
JSON Schema that MCP clients are shown.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runcomfy_mcp.domain.bounds import clipped
from runcomfy_mcp.domain.media_rules import ImageFormat, MediaKind, MediaRule, describe_media_rules
from runcomfy_mcp.errors import SpecError

logger = logging.getLogger(__name__)

# One URL, or (the plural, on arrays) a list of them.
MEDIA_FORMATS: dict[str, MediaKind] = {
    "image_uri": "image",
    "video_uri": "video",
    "audio_uri": "audio",
    "image_uris": "image",
    "video_uris": "video",
    "audio_uris": "audio",
}
_ALTERNATIVES = ("anyOf", "oneOf")


class PropertyDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = None
    description: str | None = None


class AdviceCondition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_length: int | None = None
    other_field: str | None = None
    equals: str | int | float | bool | None = None


class Advice(BaseModel):
    """A soft warning shown in the result text when `when` holds; never an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    when: AdviceCondition
    message: str


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)+$")
    tool_name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    property_docs: dict[str, PropertyDoc] = Field(default_factory=dict)
    accepted_formats: dict[str, list[ImageFormat]] = Field(default_factory=dict)
    advice: list[Advice] = Field(default_factory=list)
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]

    @model_validator(mode="after")
    def _check_schema(self) -> ToolSpec:
        schema = self.input_schema
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            raise ValueError("input_schema must be an object schema with 'properties'")
        properties: dict[str, Any] = schema["properties"]
        for where, node in schema_nodes(schema):
            rules = node.get("validations", [])
            for index, rule in enumerate(rules if isinstance(rules, list) else [rules]):
                try:
                    MediaRule.model_validate(rule)
                except ValidationError as exc:
                    raise ValueError(f"input_schema.{where}.validations[{index}]: {exc}") from exc
        for section in ("property_docs", "accepted_formats"):
            for name in getattr(self, section):
                if name not in properties:
                    raise ValueError(f"{section} names {name!r}, which is not an input property")
        for item in self.advice:
            if item.field not in properties:
                raise ValueError(f"advice names {item.field!r}, which is not an input property")
        return self

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.input_schema["properties"]
        return props

    def advice_for(self, arguments: Mapping[str, Any]) -> list[str]:
        """The soft warnings that apply to these arguments."""
        notes: list[str] = []
        for item in self.advice:
            value = arguments.get(item.field)
            if value is None:
                continue
            cond = item.when
            if (cond.max_length is not None and isinstance(value, str) and len(value) > cond.max_length) or (
                cond.other_field is not None and arguments.get(cond.other_field) == cond.equals
            ):
                notes.append(item.message)
        return notes

    def media_rules(self, field: str) -> list[MediaRule]:
        return media_rules_of(self.properties[field])

    def media_inputs(self, arguments: Mapping[str, Any], skip: Set[str] = frozenset()) -> list[MediaInput]:
        """Every media value in `arguments`, wherever the schema puts it: a field, an item of an array, a field of
        an object in an array, at any depth. Fields in `skip` (already refused) are left out."""
        found: list[MediaInput] = []
        for name, value in arguments.items():
            prop = self.properties.get(name)
            if name not in skip and value is not None and isinstance(prop, dict):
                _find_media(prop, value, (name,), found)
        return found


ArgumentPath = tuple[str | int, ...]  # where a value sits in the arguments: field names and list indexes


@dataclass(frozen=True)
class MediaInput:
    path: ArgumentPath
    kind: MediaKind
    rules: tuple[MediaRule, ...]
    value: str

    @property
    def field(self) -> str:
        return str(self.path[0])

    @property
    def label(self) -> str:
        """How messages name it: `elements[1].reference_image_urls[0]`."""
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path).lstrip(".")


def media_kind(prop: Mapping[str, Any]) -> MediaKind | None:
    """The kind of media a field holds: from `format` (singular or plural, on the field or its items, or on one
    arm of an anyOf/oneOf such as "an image or null"); `validations` alone mean images."""
    items = prop.get("items")
    for fmt in (prop.get("format"), items.get("format") if isinstance(items, dict) else None):
        if isinstance(fmt, str) and fmt in MEDIA_FORMATS:
            return MEDIA_FORMATS[fmt]
    for key in _ALTERNATIVES:
        for arm in prop.get(key) or []:
            if isinstance(arm, dict) and not any(k in arm for k in _ALTERNATIVES):
                kind = media_kind(arm)
                if kind:
                    return kind
    return "image" if prop.get("validations") else None


def media_rules_of(prop: Mapping[str, Any]) -> list[MediaRule]:
    """A media field's rules: on the field (for an array, they apply to each item) or on its items."""
    items = prop.get("items")
    rules = prop.get("validations") or (items.get("validations") if isinstance(items, dict) else None) or []
    return [MediaRule.model_validate(r) for r in rules]


def _find_media(node: Mapping[str, Any], value: Any, path: ArgumentPath, found: list[MediaInput]) -> None:
    """Walks the arguments along the schema (so no deeper than the schema, whatever the value)."""
    kind = media_kind(node)
    if kind is not None:
        rules = tuple(media_rules_of(node))
        if isinstance(value, str):
            found.append(MediaInput(path, kind, rules, value))
        elif isinstance(value, list):
            found.extend(MediaInput((*path, i), kind, rules, v) for i, v in enumerate(value) if isinstance(v, str))
        return
    properties, items = node.get("properties"), node.get("items")
    if isinstance(value, Mapping) and isinstance(properties, dict):
        for key, sub in value.items():
            if isinstance(properties.get(key), dict) and sub is not None:
                _find_media(properties[key], sub, (*path, key), found)
    elif isinstance(value, list) and isinstance(items, dict):
        for index, item in enumerate(value):
            _find_media(items, item, (*path, index), found)
    else:
        for key in _ALTERNATIVES:  # "an object or null": the arm that has the value's shape
            for arm in node.get(key) or []:
                shaped = isinstance(arm, dict) and (
                    (isinstance(value, Mapping) and "properties" in arm) or (isinstance(value, list) and "items" in arm)
                )
                if shaped:
                    _find_media(arm, value, path, found)
                    return


def with_values(arguments: Mapping[str, Any], replaced: Mapping[ArgumentPath, Any]) -> dict[str, Any]:
    """A copy of `arguments` with the value at each path replaced (the rest shared, not copied)."""
    result = dict(arguments)
    for path, value in replaced.items():
        holder: Any = result
        for step in path[:-1]:
            inner = holder[step]
            inner = dict(inner) if isinstance(inner, Mapping) else list(inner)
            holder[step] = inner
            holder = inner
        holder[path[-1]] = value
    return result


def schema_nodes(schema: Mapping[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field's schema in an object schema, nested ones too (`elements.items.name`), with where it is."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        here = f"{where}.{name}" if where else f"properties.{name}"
        yield here, prop
        yield from schema_nodes(prop, here)
        items = prop.get("items")
        if isinstance(items, dict):
            yield from schema_nodes(items, f"{here}.items")


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class SpecSource:
    name: str
    text: str
    packaged: bool = False  # shipped with the package, and meta-checked by its test suite instead of at start-up


def parse_spec(source: SpecSource) -> ToolSpec:
    try:
        data = json.loads(source.text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"Tool spec {source.name} is not valid JSON: {exc}") from exc
    try:
        spec = ToolSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"Tool spec {source.name} is invalid: {problems}") from exc
    if not source.packaged:
        check_json_schema(spec, source.name)
    return spec


def check_json_schema(spec: ToolSpec, name: str) -> None:
    """The input schema must itself be valid JSON Schema (2020-12)."""
    from jsonschema import Draft202012Validator  # ~30 ms to import: only when a file needs it
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(spec.input_schema)
    except SchemaError as exc:
        raise SpecError(f"Tool spec {name} is invalid: input_schema is not valid JSON Schema: {exc.message}") from exc


# ---------------------------------------------------------------- the schema clients see

MEDIA_INPUT_HELP = "An https:// URL, a data: URI or a local file's absolute path."
REMOTE_MEDIA_INPUT_HELP = "An https:// URL or a data: URI."  # a server over HTTP reads no local file


EXAMPLE_MAX_CHARS = 80


def _default_to_example(prop: dict[str, Any], is_media: bool) -> None:
    """A model page's sample value on a required field is not a default: shown as one, it tells an assistant
    "leave this out and you get this". Short samples become `examples`; sample media and long texts are dropped."""
    sample = prop.pop("default")
    if sample is None or is_media or len(json.dumps(sample)) > EXAMPLE_MAX_CHARS:
        return
    prop["examples"] = [sample]


def portable_input_schema(spec: ToolSpec, *, local_files: bool = True) -> dict[str, Any]:
    """The upstream schema as portable JSON Schema: RunComfy-only keys become words in descriptions, for the
    fields of objects inside arrays as for the top-level ones. `local_files`: whether media may be given as a local
    file's path (not over HTTP, where the server reads no file of its host)."""
    schema = copy.deepcopy(spec.input_schema)
    schema.pop("title", None)  # the tool's own title says it
    schema["additionalProperties"] = False
    _portable_fields(schema, spec, top=True, media_help=MEDIA_INPUT_HELP if local_files else REMOTE_MEDIA_INPUT_HELP)
    return schema


def _portable_fields(holder: dict[str, Any], spec: ToolSpec, *, top: bool, media_help: str) -> None:
    required = set(holder.get("required", []))
    for name, prop in holder["properties"].items():
        if not isinstance(prop, dict):
            continue
        doc = spec.property_docs.get(name, PropertyDoc()) if top else PropertyDoc()
        formats = spec.accepted_formats.get(name) if top else None
        _portable_field(prop, required=name in required, doc=doc.description, formats=formats, media_help=media_help)
        for inner in (prop, prop.get("items")):
            if isinstance(inner, dict) and isinstance(inner.get("properties"), dict):
                _portable_fields(inner, spec, top=False, media_help=media_help)


def _portable_field(
    prop: dict[str, Any], *, required: bool, doc: str | None, formats: Sequence[str] | None, media_help: str
) -> None:
    kind = media_kind(prop)
    if required and "default" in prop:
        _default_to_example(prop, kind is not None)
    rules = media_rules_of(prop) if kind else []
    items = prop.get("items")
    arms = [a for key in _ALTERNATIVES for a in prop.get(key) or [] if isinstance(a, dict)]
    for node in (prop, items, *arms):
        if isinstance(node, dict):
            node.pop("validations", None)
            if node.get("format") in MEDIA_FORMATS:
                del node["format"]  # not a JSON Schema format: said in words below
            node.pop("title", None)  # mostly the field's name again: context paid for on every turn
    sentences = [doc or prop.get("description") or ""]
    if kind:
        rule_words = describe_media_rules(rules, formats)
        if rule_words:
            each = f" (each {kind})" if isinstance(items, dict) else ""
            sentences.append(f"{kind.capitalize()} rules{each}: {rule_words}.")
        sentences.append(media_help)
    text = " ".join(s.strip() for s in sentences if s and s.strip())
    if text:
        prop["description"] = text
    elif "description" in prop:
        del prop["description"]


# ---------------------------------------------------------------- a catalog model in tools/list

# A catalog model that is a tool of its own (RUNCOMFY_MODELS) is listed on every turn: its title, description and
# schema together get this many characters, its texts shortened to fit, or it is not listed (run_model still runs it).
LISTED_TOOL_CHARS = 2_500
_LISTED_DESCRIPTION_CHARS = 300
_LISTED_FIELD_CHARS = 160


def listed_size(spec: ToolSpec) -> int:
    return len(spec.title) + len(spec.description) + len(json.dumps(portable_input_schema(spec)))


def fitted_for_listing(spec: ToolSpec, budget: int = LISTED_TOOL_CHARS) -> ToolSpec | None:
    """The spec as tools/list should carry it: whole when it fits, else with shorter texts (field descriptions cut,
    then dropped with the examples), or None when even that does not fit. Checks are unchanged: only words go."""
    if listed_size(spec) <= budget:
        return spec
    for field_chars in (_LISTED_FIELD_CHARS, 0):
        shorter = spec.model_copy(
            update={
                "description": clipped(spec.description, _LISTED_DESCRIPTION_CHARS),
                "input_schema": _fewer_words(spec.input_schema, field_chars),
                "property_docs": {},
            }
        )
        if listed_size(shorter) <= budget:
            return shorter
    return None


def _fewer_words(node: Any, field_chars: int, top: bool = True) -> Any:
    """A copy with every field's description cut to `field_chars` (0: removed, with the examples)."""
    if isinstance(node, list):
        return [_fewer_words(item, field_chars, False) for item in node]
    if not isinstance(node, dict):
        return node
    copied: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description" and isinstance(value, str) and not top:
            if field_chars:
                copied[key] = clipped(value, field_chars)
        elif key == "examples" and not field_chars:
            continue
        else:
            copied[key] = _fewer_words(value, field_chars, False)
    return copied
