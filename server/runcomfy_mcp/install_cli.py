"""`runcomfy-mcp install CLIENT` / `uninstall CLIENT`: this server's entry in an MCP client's config file.

The entry names the executable by its absolute path (clients start servers without the user's shell
PATH), carries the token from RUNCOMFY_API_TOKEN or a hidden prompt (a placeholder otherwise), and is
merged into what the file already holds. A backup is kept (owner-only), the file's permissions are never
loosened and are tightened to owner-only once it holds a token, folders it creates are owner-only, a
symbolic link to the config is written through (never replaced, never followed for the backup), and
the token is never printed.

A command for a person at a terminal, not the MCP server: no stdio transport runs in this process, so
stdout is this command's own output (what it prints is its answer); logs still go to stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runcomfy_mcp.private_files import private_folders

ENTRY_NAME = "runcomfy"
PLACEHOLDER = "<your RunComfy API token: Profile → API keys>"
CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")


def config_path(client: str, home: Path | None = None, platform: str = sys.platform) -> Path:
    """Where each client keeps its MCP servers, for the user (not a project)."""
    home = home or Path.home()
    if platform == "darwin":
        app_support = home / "Library" / "Application Support"
    elif platform.startswith("win"):
        app_support = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
    else:
        app_support = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    return {
        "claude-desktop": app_support / "Claude" / "claude_desktop_config.json",
        "claude-code": home / ".claude.json",
        "cursor": home / ".cursor" / "mcp.json",
        "vscode": app_support / "Code" / "User" / "mcp.json",
    }[client]


def servers_key(client: str) -> str:
    return "servers" if client == "vscode" else "mcpServers"


def launcher(use_uvx: bool = False) -> list[str]:
    """How the client should start this server: the installed executable by its absolute path, or `uvx` when
    this copy runs from uv's cache (`uvx runcomfy-mcp install …`), which may be cleaned away later."""
    found = str(Path(sys.executable).with_name("runcomfy-mcp"))
    if not Path(found).exists():
        found = shutil.which("runcomfy-mcp") or found
    ephemeral = any(part in ("archive-v0", "builds-v0") for part in Path(sys.prefix).parts) or "/uv/" in sys.prefix
    if use_uvx or ephemeral:
        return ["uvx", "runcomfy-mcp"]
    return [str(Path(found).resolve())]


def entry(client: str, *, sandbox: bool, token: str | None, use_uvx: bool = False) -> dict[str, Any]:
    command, *args = launcher(use_uvx)
    server: dict[str, Any] = {"command": command, "args": [*args, *(["--sandbox"] if sandbox else [])]}
    if client in ("vscode", "claude-code"):
        server = {"type": "stdio", **server}
    if not sandbox:
        server["env"] = {"RUNCOMFY_API_TOKEN": token or PLACEHOLDER}
    return server


def shown(server: dict[str, Any]) -> str:
    """The entry as it may be printed: the token masked."""
    masked = json.loads(json.dumps(server))
    token = masked.get("env", {}).get("RUNCOMFY_API_TOKEN")
    if token and token != PLACEHOLDER:
        masked["env"]["RUNCOMFY_API_TOKEN"] = "••••" + token[-4:] if len(token) > 8 else "••••"
    return json.dumps(masked, indent=2, ensure_ascii=False)


def config_file(path: Path) -> Path:
    """The regular file to read and write for `path`: a symbolic link is followed to the file it names (the link
    itself stays, so a config kept in a dotfiles folder keeps working); anything else is refused with a message."""
    target = path
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise SystemExit(
                f"runcomfy-mcp: {path} is a symbolic link to {os.readlink(path)}, which does not exist; fix or remove "
                "the link, or name the real file with --config. Nothing was changed."
            ) from None
    if target.is_dir():
        raise SystemExit(
            f"runcomfy-mcp: {target} is a folder, not a config file; name the client's config file with --config. "
            "Nothing was changed."
        )
    if target.exists() and not target.is_file():
        raise SystemExit(f"runcomfy-mcp: {target} is not a regular file; name the config file with --config. "
                         "Nothing was changed.")  # fmt: skip
    return target


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"runcomfy-mcp: {path} is not valid JSON ({exc.msg}, line {exc.lineno}); nothing was changed."
        ) from exc
    if not isinstance(data, dict):
        raise SystemExit(f"runcomfy-mcp: {path} does not hold a JSON object; nothing was changed.")
    return data


def _replace(path: Path, content: bytes, mode: int) -> None:
    """Put `content` at `path` with `mode`, atomically. A temporary file of our own (created exclusively, so no
    link planted in the folder is followed) is renamed over `path`: a link at `path` is replaced, never followed."""
    descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            os.fchmod(out.fileno(), mode)  # the umask must not loosen (or tighten) it
            out.write(content)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _write(path: Path, data: dict[str, Any], *, holds_token: bool) -> tuple[Path | None, int | None]:
    """Write `data` over `path` (a regular file or none yet): the previous content kept as an owner-only backup
    first, the permissions kept (a new file, or one that now holds the token, owner-only). Returns the backup and,
    when the permissions were tightened, the mode they had."""
    old_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    mode = 0o600 if old_mode is None or holds_token else old_mode
    private_folders(path.parent)
    writes = [(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(), mode)]
    backup = None
    if old_mode is not None:
        backup = path.with_name(path.name + ".bak")
        writes.insert(0, (backup, path.read_bytes(), 0o600))
    for where, content, where_mode in writes:
        try:
            _replace(where, content, where_mode)
        except OSError as exc:
            raise SystemExit(
                f"runcomfy-mcp: could not write {where} ({exc.strerror}); nothing was changed in {path}."
            ) from None
    return backup, old_mode if old_mode is not None and old_mode != mode else None


def install(
    client: str, *, sandbox: bool, token: str | None, print_only: bool, path: Path | None = None, use_uvx: bool = False
) -> str:
    target = path or config_path(client)
    server = entry(client, sandbox=sandbox, token=token, use_uvx=use_uvx)
    if print_only:
        return f"Would add to {target} under {servers_key(client)}.{ENTRY_NAME}:\n{shown(server)}"
    target = config_file(target)
    data = _read(target)
    servers = data.setdefault(servers_key(client), {})
    if not isinstance(servers, dict):
        raise SystemExit(
            f"runcomfy-mcp: {target} has a {servers_key(client)!r} that is not an object; nothing changed."
        )
    replaced = ENTRY_NAME in servers
    servers[ENTRY_NAME] = server
    holds_token = not sandbox and token is not None and token != PLACEHOLDER
    backup, tightened_from = _write(target, data, holds_token=holds_token)
    lines = [f"{'Updated' if replaced else 'Added'} {ENTRY_NAME!r} in {target}:", shown(server)]
    if tightened_from is not None:
        lines.append(f"It holds your token, so it is now readable by you only (0600; it was {tightened_from:04o}).")
    if backup:
        lines.append(f"The previous file is kept as {backup} (readable by you only).")
    if not sandbox and (token is None or token == PLACEHOLDER):
        lines.append(f"Put your RunComfy API token in place of the placeholder in {target}, or run this again with "
                     "RUNCOMFY_API_TOKEN set.")  # fmt: skip
    lines.append("Restart the client to load it.")
    return "\n".join(lines)


def uninstall(client: str, *, path: Path | None = None) -> str:
    target = config_file(path or config_path(client))
    data = _read(target)
    servers = data.get(servers_key(client))
    if not isinstance(servers, dict) or ENTRY_NAME not in servers:
        return f"There is no {ENTRY_NAME!r} entry in {target}; nothing was changed."
    del servers[ENTRY_NAME]
    backup, _ = _write(target, data, holds_token=False)
    return f"Removed {ENTRY_NAME!r} from {target} (the previous file is kept as {backup}). Restart the client."


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="runcomfy-mcp install", description="Add this server to an MCP client.")
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--sandbox", action="store_true", help="the simulated API: no token, no cost")
    parser.add_argument("--print", dest="print_only", action="store_true", help="show the entry, write nothing")
    parser.add_argument("--config", type=Path, help="the client's config file, when not in its usual place")
    parser.add_argument("--uvx", action="store_true", help="start it with `uvx runcomfy-mcp` (always the newest)")
    return parser.parse_args(argv)


def main(argv: Sequence[str], *, remove: bool = False) -> int:
    args = parse_args(argv)
    if remove:
        print(uninstall(args.client, path=args.config))
        return 0
    token = None if args.sandbox else os.environ.get("RUNCOMFY_API_TOKEN", "").strip() or None
    if token is None and not args.sandbox and not args.print_only and sys.stdin.isatty():
        token = getpass.getpass("RunComfy API token (hidden; Enter to leave a placeholder): ").strip() or None
    print(
        install(
            args.client,
            sandbox=args.sandbox,
            token=token,
            print_only=args.print_only,
            path=args.config,
            use_uvx=args.uvx,
        )
    )
    return 0
