"""Reading tool spec files: the ones shipped in the package, then the user's own folder."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from runcomfy_mcp.domain.specs import SpecSource, ToolSpec, parse_spec
from runcomfy_mcp.domain.tool_names import ToolNames
from runcomfy_mcp.errors import SpecError

logger = logging.getLogger(__name__)


def _packaged_sources() -> Iterator[SpecSource]:
    folder = resources.files("runcomfy_mcp.tool_specs")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield SpecSource(f"tool_specs/{entry.name}", entry.read_text(encoding="utf-8"), packaged=True)


def _folder_sources(folder: Path, required: bool) -> Iterator[SpecSource]:
    if not folder.is_dir():
        if not required:
            return
        raise SpecError(f"RUNCOMFY_TOOL_SPECS_DIR {str(folder)!r} is not a folder.")
    for path in sorted(folder.glob("*.json")):
        yield SpecSource(str(path), path.read_text(encoding="utf-8"))


def load_specs(
    extra_dir: Path | None = None, *, required: bool = True, names: ToolNames | None = None
) -> list[ToolSpec]:
    """The packaged specs, then those in `extra_dir` (which may be missing unless `required`). Every tool name is
    claimed in `names`: a user's file for a bundled model replaces the bundled spec, any other repeat is refused."""
    names = names if names is not None else ToolNames(())
    by_name: dict[str, ToolSpec] = {}
    origin: dict[str, str] = {}
    sources: Iterable[SpecSource] = _packaged_sources()
    for source in [*sources, *(_folder_sources(extra_dir, required) if extra_dir else [])]:
        spec = parse_spec(source)
        earlier = by_name.get(spec.tool_name)
        if (
            earlier is not None
            and earlier.model_id == spec.model_id
            and origin[spec.tool_name].startswith("tool_specs/")
        ):
            logger.info("tool spec %s replaces %s", source.name, origin[spec.tool_name])
            names.release(spec.tool_name)
        names.claim(spec.tool_name, f"tool spec {source.name}")
        by_name[spec.tool_name] = spec
        origin[spec.tool_name] = source.name
    return list(by_name.values())
