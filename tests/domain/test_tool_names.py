"""One registry of tool names: a spec file, `models add --name` or RUNCOMFY_MODELS never takes a built-in's name,
nor another spec's, and the refusal names both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.domain.tool_names import ToolNames, tool_name_for, unique_tool_names
from runcomfy_mcp.errors import SpecError
from runcomfy_mcp.mcp.tools import RunComfyTools, builtin_tool_names
from runcomfy_mcp.runtime import tool_names
from runcomfy_mcp.upstream.redaction import Redactor

SPEC_DIR = Path(__file__).resolve().parents[2] / "tool_specs"
LITE_FILE = SPEC_DIR / "seedance-1-0__lite__image-to-video.json"


def spec_file(folder: Path, name: str, **changes: object) -> Path:
    data = json.loads(LITE_FILE.read_text())
    data.update(changes)
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_the_built_in_names_are_the_tools_the_server_registers() -> None:
    names = builtin_tool_names()
    assert {"run_model", "find_models", "describe_model", "get_status", "get_result", "estimate_cost"} <= names
    registered = RunComfyTools(load_specs(), services=None, redactor=Redactor()).tools  # type: ignore[arg-type]
    model_tools = {name for name in registered if name not in names}
    assert set(registered) == names | model_tools and len(model_tools) == 4


@pytest.mark.parametrize("taken", ["run_model", "find_models", "describe_model", "get_status", "estimate_cost"])
def test_a_spec_file_named_like_a_built_in_is_refused_naming_both(tmp_path: Path, taken: str) -> None:
    spec_file(tmp_path, "mine.json", tool_name=taken, model_id="acme/video/pro")
    with pytest.raises(SpecError) as refused:
        load_specs(tmp_path, names=tool_names())
    message = str(refused.value)
    assert repr(taken) in message and "mine.json" in message and "built-in tool" in message


def test_two_spec_files_with_one_name_are_refused_naming_both(tmp_path: Path) -> None:
    spec_file(tmp_path, "a.json", tool_name="my_video", model_id="acme/video/a")
    spec_file(tmp_path, "b.json", tool_name="my_video", model_id="acme/video/b")
    with pytest.raises(SpecError) as refused:
        load_specs(tmp_path, names=tool_names())
    assert "a.json" in str(refused.value) and "b.json" in str(refused.value)


def test_a_newer_file_for_a_bundled_model_replaces_it(tmp_path: Path) -> None:
    bundled = json.loads(LITE_FILE.read_text())
    spec_file(tmp_path, "lite.json", title="Lite, my way")
    specs = {s.tool_name: s for s in load_specs(tmp_path, names=tool_names())}
    assert len(specs) == 4 and specs[bundled["tool_name"]].title == "Lite, my way"


def test_catalog_names_step_around_taken_ones() -> None:
    assert tool_name_for("acme/run-model") == "acme_run_model"
    assert tool_name_for("run/model", reserved=builtin_tool_names()).startswith("run_model_")
    names = ToolNames(builtin_tool_names())
    chosen = unique_tool_names(["run/model", "get/status"], taken=names.taken())
    assert not set(chosen.values()) & builtin_tool_names()
    for model_id, name in chosen.items():
        names.claim(name, f"RUNCOMFY_MODELS' {model_id}")
    with pytest.raises(SpecError, match="RUNCOMFY_MODELS' run/model"):
        names.claim(chosen["run/model"], "tool spec x.json")
