"""The in-chat player, an MCP App: one self-contained HTML file, its URI, and the sandbox a host gives it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources as package_files
from typing import Any

import mcp_types as types
from mcp.server.apps import APP_MIME_TYPE

PLAYER_URI = "ui://runcomfy/player.html"
PLAYER_META = {"ui": {"resourceUri": PLAYER_URI}}  # on a tool: hosts with MCP Apps show its results in the player
SIMULATED_META = "runcomfy/simulated"  # in a result's _meta: made by the sandbox, nothing ran or was charged


@functools.cache
def player_html() -> str:
    """One self-contained file shipped in the package: no external script, style or font."""
    return (package_files.files("runcomfy_mcp.mcp") / "player.html").read_text(encoding="utf-8")


def player_ui_meta(media_domains: Sequence[str]) -> dict[str, Any]:
    """The player's sandbox: media only from the output hosts (and the sandbox's own origin); no connections."""
    return {"csp": {"resourceDomains": list(media_domains)}, "prefersBorder": False}


def player_resource(media_domains: Sequence[str]) -> types.Resource:
    return types.Resource(
        uri=PLAYER_URI,
        name="player",
        title="RunComfy player",
        description=(
            "Plays a job's video (or shows its image) or a composed film with its shots in the chat, keeps a "
            "running job current, and saves the file."
        ),
        mime_type=APP_MIME_TYPE,
        _meta={"ui": player_ui_meta(media_domains)},
    )


def player_contents(media_domains: Sequence[str]) -> types.TextResourceContents:
    return types.TextResourceContents(
        uri=PLAYER_URI, mime_type=APP_MIME_TYPE, text=player_html(), _meta={"ui": player_ui_meta(media_domains)}
    )
