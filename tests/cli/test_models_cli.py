"""`runcomfy-mcp models search|show|add` against the simulated catalog, as a person would type them."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from mcp import Client
from runcomfy_mcp.cli import main
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.settings import Settings

KLING_PRO = "kling/kling-v2-1/pro/image-to-video"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", *argv, "--sandbox"])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_search_lists_the_best_matches_with_prices(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "search", "kling", "image", "to", "video", "--limit", "3")
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith(f"- {KLING_PRO}: ") and "$0.09/second" in lines[1]
    code, out, _ = run_cli(capsys, "search", "--category", "text-to-audio")
    assert code == 0 and "minimax/speech-2-6/hd/text-to-speech" in out


def test_show_prints_the_inputs_and_an_unknown_id_fails_with_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "show", KLING_PRO)
    assert code == 0 and "- cfg_scale (number; min 0; max 1; default 0.5)." in out and "image_url*" in out
    code, _, err = run_cli(capsys, "show", "kling/kling-v2-1/pro/image-to-vido")
    assert code == 1 and KLING_PRO in err and "Traceback" not in err


def test_add_writes_a_spec_that_is_a_tool_at_the_next_start(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "add", KLING_PRO)
    spec_file = tmp_path / "config" / "runcomfy-mcp" / "tool_specs" / "kling_v2_1_pro_image_to_video.json"
    assert code == 0 and str(spec_file) in out
    spec = json.loads(spec_file.read_text())
    assert spec["model_id"] == KLING_PRO and spec["input_schema"]["properties"]["cfg_scale"]["type"] == "number"
    code, _, err = run_cli(capsys, "add", KLING_PRO)
    assert code == 1 and "--force" in err  # an edited file is never overwritten by accident

    spec["description"] = "My own words for this model."  # the file is the user's to edit
    spec_file.write_text(json.dumps(spec))

    async def listed() -> dict[str, str]:
        async with open_runtime(Settings(api_token="x")) as runtime, Client(build_server(runtime.tools)) as client:
            return {t.name: t.description or "" for t in (await client.list_tools()).tools}

    tools = anyio.run(listed)
    assert tools["kling_v2_1_pro_image_to_video"].startswith("My own words for this model.")


def test_a_schema_that_cannot_be_used_is_not_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "add", "acme/holo-1/text-to-3d")
    assert code == 1 and "tensor" in err and not (tmp_path / "config" / "runcomfy-mcp" / "tool_specs").exists()


def test_add_refuses_a_name_that_is_taken_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "add", KLING_PRO, "--name", "run_model")
    assert code == 1 and "'run_model'" in err and "built-in tool" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "add", KLING_PRO, "--name", "seedance_1_0_lite_image_to_video")
    assert code == 1 and "tool spec tool_specs/seedance-1-0__lite__image-to-video.json" in err
    folder = Settings().specs_dir()
    assert not folder.exists() or not list(folder.iterdir())
