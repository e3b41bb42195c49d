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


async def listed_tools(settings: Settings) -> dict[str, str]:
    async with open_runtime(settings) as runtime, Client(build_server(runtime.tools)) as client:
        return {t.name: t.description or "" for t in (await client.list_tools()).tools}


def test_add_writes_a_spec_that_is_a_sandbox_tool_at_the_next_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run_cli(capsys, "add", KLING_PRO)
    folder = tmp_path / "config" / "runcomfy-mcp" / "tool_specs"
    spec_file = folder / "sandbox" / "kling_v2_1_pro_image_to_video.json"
    assert code == 0 and str(spec_file) in out
    spec = json.loads(spec_file.read_text())
    assert spec["model_id"] == KLING_PRO and spec["input_schema"]["properties"]["cfg_scale"]["type"] == "number"
    code, _, err = run_cli(capsys, "add", KLING_PRO)
    assert code == 1 and "--force" in err  # an edited file is never overwritten by accident

    spec["description"] = "My own words for this model."  # the file is the user's to edit
    spec_file.write_text(json.dumps(spec))
    sandbox_tools = anyio.run(listed_tools, Settings(sandbox=True))
    assert sandbox_tools["kling_v2_1_pro_image_to_video"].startswith("My own words for this model.")
    # the simulator's made-up schema is never offered by a real server
    assert "kling_v2_1_pro_image_to_video" not in anyio.run(listed_tools, Settings(api_token="x"))
    assert not list(folder.glob("*.json"))


def test_sandbox_goes_before_the_command_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--sandbox", "models", "search", "kling"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0 and f"- {KLING_PRO}: " in out, err
    data = tmp_path / "data"
    assert (data / "sandbox" / "catalog.json").exists() and not list(data.glob("catalog*.json"))


def test_a_schema_that_cannot_be_used_is_not_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "add", "acme/holo-1/text-to-3d")
    assert code == 1 and "tensor" in err and not (tmp_path / "config" / "runcomfy-mcp" / "tool_specs").exists()


def test_add_refuses_a_name_that_is_taken_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "add", KLING_PRO, "--name", "run_model")
    assert code == 1 and "'run_model'" in err and "built-in tool" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "add", KLING_PRO, "--name", "seedance_1_0_lite_image_to_video")
    assert code == 1 and "tool spec tool_specs/seedance-1-0__lite__image-to-video.json" in err
    for folder in (Settings().specs_dir(), Settings(sandbox=True).specs_dir()):
        assert not folder.exists() or not list(folder.glob("*.json"))


def test_show_answers_in_command_line_words(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "show", "kling")
    assert code == 1 and "'kling' is not a model id" in err and "runcomfy-mcp models search" in err
    assert "run_model" not in err and "arguments" not in err
    code, out, _ = run_cli(capsys, "show", KLING_PRO)
    assert f"runcomfy-mcp models add {KLING_PRO}" in out.splitlines()[-1]
    code, out, _ = run_cli(capsys, "search", "kling")
    assert "runcomfy-mcp models show MODEL_ID" in out.splitlines()[-1] and "describe_model" not in out


def test_an_offline_search_says_so_once_without_log_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from http_servers import free_port

    monkeypatch.setenv("RUNCOMFY_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "search", "seedance"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0 and "could not be read" in out and "seedance" in out
    assert err == "", err  # no retry-by-retry WARNING:stamina lines


def test_every_flag_of_the_server_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--log-level {DEBUG,INFO,WARNING,ERROR} how much the server logs" in out
    assert "ByteDance video models" not in out
