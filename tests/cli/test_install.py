"""`runcomfy-mcp install CLIENT`: merged into the client's config, backed up, permissions kept, token never shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from helpers import mode_of
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


def test_claude_desktop_entry_is_merged_with_a_private_backup(
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
    assert mode_of(path) == 0o600  # it holds the token now
    backup = path.with_name(path.name + ".bak")
    assert json.loads(backup.read_text())["mcpServers"] == {"other": {"command": "x"}}
    assert mode_of(backup) == 0o600
    assert "0600" in out
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


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The message of a command that stops with a message (a string exit), never a traceback."""
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    assert isinstance(done.value.code, str), done.value.code
    return done.value.code


def test_a_world_readable_config_is_made_private_once_it_holds_the_token(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, umask_022: None
) -> None:
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mcpServers": {}}))
    path.chmod(0o644)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SECRET)
    out = run(capsys, "install", "cursor")
    assert mode_of(path) == 0o600 and mode_of(path.with_name("mcp.json.bak")) == 0o600
    assert "0600" in out and SECRET not in out
    run(capsys, "install", "cursor")  # again: the backup now holds the token too, and stays private
    assert mode_of(path.with_name("mcp.json.bak")) == 0o600


def test_a_config_without_a_token_keeps_its_permissions(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.chmod(0o640)
    run(capsys, "install", "cursor", "--sandbox")
    assert mode_of(path) == 0o640


def test_new_folders_are_private(home: Path, capsys: pytest.CaptureFixture[str], umask_022: None) -> None:
    path = config_path("claude-desktop")  # ~/.config/Claude: neither folder exists yet
    run(capsys, "install", "claude-desktop")
    assert mode_of(path.parent) == 0o700 and mode_of(path.parent.parent) == 0o700
    assert mode_of(path) == 0o600


def test_a_symlinked_config_is_written_where_it_points_and_stays_a_link(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dotfiles = home / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "cursor-mcp.json"
    real.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}}))
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.symlink_to(real)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SECRET)
    out = run(capsys, "install", "cursor")
    assert path.is_symlink() and path.resolve() == real
    assert json.loads(real.read_text())["mcpServers"]["runcomfy"]["env"]["RUNCOMFY_API_TOKEN"] == SECRET
    assert mode_of(real) == 0o600 and str(real) in out
    assert json.loads((dotfiles / "cursor-mcp.json.bak").read_text()) == {"mcpServers": {"other": {"command": "x"}}}
    assert "Removed" in run(capsys, "uninstall", "cursor")
    assert path.is_symlink() and json.loads(real.read_text()) == {"mcpServers": {"other": {"command": "x"}}}


def test_a_dangling_symlinked_config_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.symlink_to(home / "gone.json")
    message = refused(capsys, "install", "cursor", "--sandbox")
    assert "symbolic link" in message and "nothing was changed" in message.lower()
    assert path.is_symlink() and not (home / "gone.json").exists()


def test_a_backup_symlink_is_replaced_never_followed(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker's `.bak` link must not make the old config (with its secrets) land where the link points."""
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mcpServers": {"other": {"env": {"KEY": "old-secret"}}}}))
    elsewhere = home / "public" / "loot.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text("untouched")
    backup = path.with_name("mcp.json.bak")
    backup.symlink_to(elsewhere)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SECRET)
    run(capsys, "install", "cursor")
    assert elsewhere.read_text() == "untouched"
    assert not backup.is_symlink() and "old-secret" in backup.read_text() and mode_of(backup) == 0o600


def test_a_config_that_is_a_folder_gets_a_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path("cursor")
    path.mkdir(parents=True)
    for argv in (("install", "cursor", "--sandbox"), ("uninstall", "cursor")):
        message = refused(capsys, *argv)
        assert "is a folder" in message and "--config" in message
    assert path.is_dir() and not list(path.iterdir())


def test_a_backup_that_is_a_folder_gets_a_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.with_name("mcp.json.bak").mkdir()
    message = refused(capsys, "install", "cursor", "--sandbox")
    assert "mcp.json.bak" in message and "nothing was changed" in message.lower()
    assert path.read_text() == "{}"
