"""Small readers of MCP results and of files, so tests say what they check."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import mcp_types as types

IMAGE_URL = "https://images.example.com/640x480.png"


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


SEEDANCE_LITE_ARGS = {"prompt": "a cat walks along a wall", "first_frame_image_url": IMAGE_URL}


def mode_of(path: Path) -> int:
    """A file's permission bits (of the link itself, for a link)."""
    return stat.S_IMODE(path.lstat().st_mode)


def local_file(folder: Path, name: str, data: bytes) -> str:
    """`data` written to `folder/name`; the path, as a caller names a file on this machine."""
    path = folder / name
    path.write_bytes(data)
    return str(path)
