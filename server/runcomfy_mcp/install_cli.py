"""`runcomfy-mcp install CLIENT` / `uninstall CLIENT`: this server's entry in an MCP client's config file.

The entry names the executable by its absolute path (clients start servers without the user's shell
PATH), carries the token from RUNCOMFY_API_TOKEN or a hidden prompt (a placeholder otherwise), and is
merged into what the file already holds. A backup is kept, the file's permissions are never loosened
(a new file is private to its owner: it holds a token), and the token is never printed.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _write(path: Path, data: dict[str, Any]) -> Path | None:
    """Write `data` over `path`: a backup first, the same permissions (or owner-only for a new file)."""
    backup = None
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o600
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.write("\n")
    os.chmod(partial, mode)  # the umask must not loosen (or tighten) what the file had
    os.replace(partial, path)
    return backup


def install(
    client: str, *, sandbox: bool, token: str | None, print_only: bool, path: Path | None = None, use_uvx: bool = False
) -> str:
    target = path or config_path(client)
    server = entry(client, sandbox=sandbox, token=token, use_uvx=use_uvx)
    if print_only:
        return f"Would add to {target} under {servers_key(client)}.{ENTRY_NAME}:\n{shown(server)}"
    data = _read(target)
    servers = data.setdefault(servers_key(client), {})
    if not isinstance(servers, dict):
        raise SystemExit(
            f"runcomfy-mcp: {target} has a {servers_key(client)!r} that is not an object; nothing changed."
        )
    replaced = ENTRY_NAME in servers
    servers[ENTRY_NAME] = server
    backup = _write(target, data)
    lines = [f"{'Updated' if replaced else 'Added'} {ENTRY_NAME!r} in {target}:", shown(server)]
    if backup:
        lines.append(f"The previous file is kept as {backup}.")
    if not sandbox and (token is None or token == PLACEHOLDER):
        lines.append(f"Put your RunComfy API token in place of the placeholder in {target}, or run this again with "
                     "RUNCOMFY_API_TOKEN set.")  # fmt: skip
    lines.append("Restart the client to load it.")
    return "\n".join(lines)


def uninstall(client: str, *, path: Path | None = None) -> str:
    target = path or config_path(client)
    data = _read(target)
    servers = data.get(servers_key(client))
    if not isinstance(servers, dict) or ENTRY_NAME not in servers:
        return f"There is no {ENTRY_NAME!r} entry in {target}; nothing was changed."
    del servers[ENTRY_NAME]
    backup = _write(target, data)
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
