"""`runcomfy-mcp install CLIENT`: merged into the client's config, backed up, permissions kept, token never shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from runcomfy_mcp.cli import main
from runcomfy_mcp.install_cli import PLACEHOLDER, config_path

SECRET = "rc-install-secret-91af3c"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    return tmp_path


def test_claude_desktop_entry_is_merged_with_a_backup_and_the_same_permissions(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_path("claude-desktop")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}))
    path.chmod(0o640)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SECRET)
    out = run(capsys, "install", "claude-desktop")
    data = json.loads(path.read_text())
    server = data["mcpServers"]["runcomfy"]
    assert data["theme"] == "dark" and data["mcpServers"]["other"] == {"command": "x"}
    assert Path(server["command"]).is_absolute() and server["command"].endswith("runcomfy-mcp")
    assert server["env"]["RUNCOMFY_API_TOKEN"] == SECRET and server["args"] == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert json.loads(path.with_name(path.name + ".bak").read_text())["mcpServers"] == {"other": {"command": "x"}}
    assert (SECRET not in out and "••••3c" not in out) or SECRET[-4:] in out  # masked, never whole
    assert SECRET not in out


def test_a_new_file_is_private_and_print_writes_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed = run(capsys, "install", "cursor", "--print")
    assert "mcpServers.runcomfy" in printed and not config_path("cursor").exists()
    run(capsys, "install", "cursor")
    path = config_path("cursor")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["mcpServers"]["runcomfy"]["env"]["RUNCOMFY_API_TOKEN"] == PLACEHOLDER


def test_vscode_and_claude_code_shapes_and_sandbox(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "install", "vscode", "--sandbox")
    vscode = json.loads(config_path("vscode").read_text())["servers"]["runcomfy"]
    assert vscode["type"] == "stdio" and vscode["args"] == ["--sandbox"] and "env" not in vscode
    run(capsys, "install", "claude-code", "--sandbox")
    code = json.loads((home / ".claude.json").read_text())["mcpServers"]["runcomfy"]
    assert code["type"] == "stdio" and code["args"] == ["--sandbox"]


def test_uninstall_removes_only_this_entry(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}}))
    run(capsys, "install", "cursor", "--sandbox")
    out = run(capsys, "uninstall", "cursor")
    assert "Removed" in out and json.loads(path.read_text()) == {"mcpServers": {"other": {"command": "x"}}}
    assert "nothing was changed" in run(capsys, "uninstall", "cursor")


def test_a_broken_config_is_left_alone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="not valid JSON"):
        main(["install", "cursor", "--sandbox"])
    assert path.read_text() == "{not json" and not path.with_name("mcp.json.bak").exists()


def test_run_through_uvx_it_installs_a_uvx_entry(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`uvx runcomfy-mcp install …` runs from uv's cache, which may be cleaned: the entry must not point there."""
    monkeypatch.setattr("sys.prefix", str(home / ".cache" / "uv" / "archive-v0" / "abc123"))
    run(capsys, "install", "claude-desktop", "--sandbox")
    server = json.loads(config_path("claude-desktop").read_text())["mcpServers"]["runcomfy"]
    assert server["command"] == "uvx" and server["args"] == ["runcomfy-mcp", "--sandbox"]
