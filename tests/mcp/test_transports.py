"""The installed console script, driven as real clients drive it: over stdio and over streamable HTTP."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import anyio
import pytest

from conftest import TOKEN
from helpers import structured
from http_servers import SCRIPT, http_client, http_server, server_env
from images import make_image
from mcp import Client, StdioServerParameters
from runcomfy_mcp.sandbox.simulator import Simulator

pytestmark = pytest.mark.anyio


def test_console_script_is_installed() -> None:
    assert SCRIPT.exists(), f"install the project first (pip install -e .): {SCRIPT} is missing"


@pytest.fixture
def local_image(tmp_path: Path) -> str:
    path = tmp_path / "photo.png"
    path.write_bytes(make_image(640, 480))
    return str(path)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_console_script_runs_a_job(api_url: str, simulator: Simulator, mode: str, local_image: str) -> None:
    params = StdioServerParameters(command=str(SCRIPT), args=[], env=server_env(api_url))
    async with Client(params, mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "seedance_1_0_lite_image_to_video" in names
        args = {"prompt": "a cat", "first_frame_image_url": local_image}
        job = structured(await client.call_tool("seedance_1_0_lite_image_to_video", args))
        status = structured(await client.call_tool("get_status", {"request_id": job["request_id"]}))
    assert status["status"] == "in_queue"
    sent = simulator.calls.submits[0]["arguments"]["first_frame_image_url"]
    assert sent.startswith("data:image/png;base64,")


async def test_python_dash_m_works_too(api_url: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "runcomfy_mcp"], env=server_env(api_url))
    async with Client(params) as client:
        assert len((await client.list_tools()).tools) == 15


async def test_stdout_carries_only_protocol_and_logs_hide_the_token(api_url: str) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_status", "arguments": {"request_id": "unknown-id"}},
        },
    ]
    process = await anyio.open_process([str(SCRIPT), "--log-level", "DEBUG"], env=server_env(api_url))
    async with process:
        assert process.stdin and process.stdout and process.stderr
        await process.stdin.send("".join(json.dumps(m) + "\n" for m in messages).encode())
        buffer = b""
        with anyio.fail_after(15):
            while buffer.count(b"\n") < 3:
                buffer += await process.stdout.receive()
        await process.stdin.aclose()
        with anyio.fail_after(10):
            await process.wait()
        stderr = b""
        async for chunk in process.stderr:
            stderr += chunk
    replies = [json.loads(line) for line in buffer.decode().splitlines()]
    assert [r.get("id") for r in replies] == [1, 2, 3]
    assert replies[2]["result"]["isError"] is True
    assert "runcomfy-mcp" in stderr.decode() and "serving 15 tools" in stderr.decode()
    assert TOKEN not in stderr.decode()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_streamable_http_runs_a_job(api_url: str, simulator: Simulator, mode: str) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
    async with http_server(api_url) as url, http_client(url, TOKEN, mode) as client:
        assert len((await client.list_tools()).tools) == 15
        args = {"prompt": "a cat", "first_frame_image_url": data_uri}
        job = structured(await client.call_tool("seedance_1_0_lite_image_to_video", args))
        result = structured(await client.call_tool("get_result", {"request_id": job["request_id"]}))
    assert result["status"] == "in_queue"
    assert len(simulator.calls.submits) == 1
