"""Small readers of MCP results, so tests say what they check."""

from __future__ import annotations

from typing import Any

import mcp_types as types

IMAGE_URL = "https://images.example.com/640x480.png"


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


SEEDANCE_LITE_ARGS = {"prompt": "a cat walks along a wall", "first_frame_image_url": IMAGE_URL}
