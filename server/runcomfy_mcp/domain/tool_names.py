"""One registry of tool names: the built-in tools, spec files, RUNCOMFY_MODELS and `models add` all claim their
names here, so a duplicate is refused by name instead of one tool silently shadowing another."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from runcomfy_mcp.errors import SpecError

BUILTIN = "this server's built-in tool"


class ToolNames:
    """Which tool name belongs to whom. Built-in names come from the tools the MCP layer registers."""

    def __init__(self, builtins: Iterable[str]) -> None:
        self._owners: dict[str, str] = dict.fromkeys(builtins, BUILTIN)
        self.builtins = frozenset(self._owners)

    def __contains__(self, name: object) -> bool:
        return name in self._owners

    def owner(self, name: str) -> str | None:
        return self._owners.get(name)

    def taken(self) -> frozenset[str]:
        return frozenset(self._owners)

    def claim(self, name: str, owner: str) -> None:
        """Give `name` to `owner` (a spec file, a catalog model…); refused, naming both, when it is someone else's."""
        held_by = self._owners.get(name)
        if held_by is not None and held_by != owner:
            raise SpecError(
                f"The tool name {name!r} of {owner} is already used by {held_by}. Give it another tool_name "
                "(every tool of this server needs its own name)."
            )
        self._owners[name] = owner

    def release(self, name: str) -> None:
        """A spec that is replaced (a newer file for the same model) gives its name back first."""
        self._owners.pop(name, None)


def tool_name_for(model_id: str, reserved: Iterable[str] = ()) -> str:
    """A stable tool name from a model id: `kling/kling-v2-1/pro/image-to-video` → `kling_v2_1_pro_image_to_video`.
    Over 64 characters, or clashing with a `reserved` name, it is shortened and given a hash of the id."""
    parts = [p for p in (re.sub(r"[^a-z0-9]+", "_", seg.lower()).strip("_") for seg in model_id.split("/")) if p]
    if len(parts) > 1 and parts[1].startswith(parts[0]):
        parts = parts[1:]  # the vendor repeated in the model's name
    name = "_".join(parts) or "model"
    if not name[0].isalpha():
        name = f"m_{name}"
    if len(name) > 64 or name in set(reserved):
        name = _hashed(name, model_id)
    return name


def unique_tool_names(model_ids: Sequence[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """model_id → tool name, unique among themselves and `taken`; a clash gets the id's hash appended."""
    used = set(taken)
    names: dict[str, str] = {}
    for model_id in model_ids:
        name = tool_name_for(model_id, used)
        if name in used:
            name = _hashed(name, model_id)
        used.add(name)
        names[model_id] = name
    return names


def _hashed(name: str, model_id: str) -> str:
    return f"{name[:55].rstrip('_')}_{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"
