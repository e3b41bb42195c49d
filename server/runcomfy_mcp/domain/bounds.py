"""How big and how deep a JSON value is, measured without recursion (the value may be hostile).

Python's own tools recurse: `copy.deepcopy`, `json.dumps`, a validator's descent. A value nested a
few thousand levels deep makes each of them raise RecursionError, and a value of millions of items
keeps them busy for seconds. So upstream data and callers' arguments are measured first, by loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Size:
    depth: int  # containers inside containers: 0 for a plain value, 1 for [1, 2], 2 for [[1]]
    values: int  # every value, containers included
    text_chars: int  # the characters of every string and key

    def within(self, *, depth: int, values: int) -> bool:
        return self.depth <= depth and self.values <= values


def measure(value: Any, *, stop_after: int = 1_000_000) -> Size:
    """The size of a JSON-like value; counting stops soon after `stop_after` values (the answer is then only
    known to be over it)."""
    deepest = values = chars = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending and values <= stop_after:
        item, depth = pending.pop()
        values += 1
        if isinstance(item, dict):
            depth += 1
            deepest = max(deepest, depth)
            for key, sub in item.items():
                chars += len(key) if isinstance(key, str) else 0
                pending.append((sub, depth))
        elif isinstance(item, list | tuple):
            depth += 1
            deepest = max(deepest, depth)
            pending.extend((sub, depth) for sub in item)
        elif isinstance(item, str):
            chars += len(item)
    return Size(depth=deepest, values=values, text_chars=chars)


def clipped(text: str, limit: int) -> str:
    """`text` with its whitespace runs kept as they are, cut to at most `limit` characters (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
