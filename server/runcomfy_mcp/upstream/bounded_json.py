"""RunComfy's answers read as JSON whatever their depth, keeping what can be read.

`json.loads` recurses: one listing entry nested a few thousand levels deep makes it raise
RecursionError, and the whole page — every other model — would be lost with it. An answer nested
deeper than MAX_DEPTH is read again by an event parser (ijson), which does not recurse: each
container past that depth becomes the marker TOO_DEEP, so the entry holding it can be told apart
and skipped while its neighbours are kept.
"""

from __future__ import annotations

import json
from typing import Any

import ijson  # type: ignore[import-untyped]

from runcomfy_mcp.domain.bounds import measure

MAX_DEPTH = 64  # a listing page is 2 levels to an entry; no real entry comes near the rest
MAX_VALUES = 2_000_000  # past this the depth is not worth counting: the event parser reads it bounded anyway
TOO_DEEP = "[nested too deep to be read]"


def loads(data: bytes | str) -> Any:
    """The JSON value of `data`, containers deeper than MAX_DEPTH replaced by TOO_DEEP; ValueError if not JSON."""
    try:
        value = json.loads(data)
    except RecursionError:
        return _read_bounded(data)
    if not measure(value, stop_after=MAX_VALUES).within(depth=MAX_DEPTH, values=MAX_VALUES):
        return _read_bounded(data)
    return value


def _read_bounded(data: bytes | str) -> Any:
    root: Any = None
    open_containers: list[dict[str, Any] | list[Any]] = []
    key = ""
    skipped_levels = 0  # inside a container past MAX_DEPTH: its events are dropped until it closes

    def place(value: Any) -> None:
        nonlocal root
        if not open_containers:
            root = value
        elif isinstance(parent := open_containers[-1], dict):
            parent[key] = value
        else:
            parent.append(value)

    raw = data.encode() if isinstance(data, str) else data
    try:
        for event, value in ijson.basic_parse(raw, use_float=True):
            opening, closing = event in ("start_map", "start_array"), event in ("end_map", "end_array")
            if skipped_levels:
                skipped_levels += 1 if opening else -1 if closing else 0
                if not skipped_levels:
                    place(TOO_DEEP)
            elif opening and len(open_containers) >= MAX_DEPTH:
                skipped_levels = 1
            elif opening:
                container: dict[str, Any] | list[Any] = {} if event == "start_map" else []
                place(container)
                open_containers.append(container)
            elif closing:
                open_containers.pop()
            elif event == "map_key":
                key = value
            else:
                place(value)
    except ijson.JSONError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    return root
