"""The player in a real browser: Debian's Chromium, headless, driven by Playwright (nothing downloaded).

A small host page of the tests' own reads the UI resource from the server over streamable HTTP, mounts
it in a sandboxed iframe with the CSP the resource declares, performs the app handshake, and sends the
tool input and a real wait_for_result result from the sandbox. The video must really play, no CSP
violation may be reported, and "Save to disk" must reach the server as get_result with download=true.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from helpers import structured
from http_servers import free_port
from images import make_image
from mcp import Client
from runcomfy_mcp.sandbox.serving import serve_on_loopback, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")
HOST_PAGE = Path(__file__).with_name("player_host.html")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
FORWARDED = ("content-type", "accept", "mcp-session-id", "mcp-protocol-version")


@pytest.fixture
async def sandbox_server(tmp_path: Path) -> AsyncIterator[str]:
    """`runcomfy-mcp --transport http --sandbox` (videos made from the job's image, served by the simulator)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env |= {"RUNCOMFY_DATA_DIR": str(tmp_path / "data"), "RUNCOMFY_OUTPUT_DIR": str(tmp_path / "videos"),
            "RUNCOMFY_SANDBOX_TIME_SCALE": "0.05"}  # fmt: skip
    command = [str(SCRIPT), "--transport", "http", "--sandbox", "--shared-token", "--port", str(port)]
    process = await anyio.open_process(command, env=env, stdout=None, stderr=None)
    try:
        await wait_for_port(port, timeout_s=20)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


def host_app(mcp_url: str) -> Starlette:
    """The host page, and /mcp passed through to the server so that the page talks to it from its own origin."""
    http = httpx.AsyncClient(timeout=60)

    async def page(request: Request) -> Response:
        return FileResponse(HOST_PAGE, media_type="text/html")

    async def mcp(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        answer = await http.request(request.method, mcp_url, headers=headers, content=await request.body())
        kept = {k: v for k, v in answer.headers.items() if k.lower() in FORWARDED}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    return Starlette(routes=[Route("/", page), Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])])


async def test_the_player_plays_the_video_and_saves_through_the_server(sandbox_server: str) -> None:
    from playwright.async_api import async_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/ensure-chromium installs it (the test set-up runs it)"
    photo = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
    async with Client(streamable_http_client(sandbox_server)) as client:
        arguments = {"prompt": "the hills at sunset", "first_frame_image_url": photo, "duration": 5}
        job = structured(await client.call_tool("seedance_1_0_lite_image_to_video", arguments))
    console: list[str] = []
    async with serve_on_loopback(host_app(sandbox_server)) as host, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=BROWSER_FLAGS,
        )
        try:
            page = await browser.new_page()
            page.on("console", lambda message: console.append(message.text))
            await page.goto(f"{host}/?request_id={job['request_id']}")
            await page.wait_for_function(
                "window.log.stage === 'result-sent' || window.log.errors.length", timeout=60000
            )
            log = await page.evaluate("window.log")
            assert not log["errors"], log
            assert log["resource"]["mimeType"] == "text/html;profile=mcp-app"
            assert log["result"]["structuredContent"]["status"] == "succeeded"

            view = page.frame_locator("#view")
            video = view.locator("video")
            await video.wait_for(timeout=20000)
            frame = next(f for f in page.frames if f != page.main_frame)
            await frame.wait_for_function("document.querySelector('video').readyState >= 2", timeout=20000)
            first = await frame.evaluate("document.querySelector('video').currentTime")
            await anyio.sleep(1.0)
            facts = await frame.evaluate(
                "(() => { const v = document.querySelector('video');"
                " return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight, paused: v.paused,"
                " error: v.error && v.error.code}; })()"
            )
            assert facts["error"] is None and not facts["paused"], facts
            assert facts["time"] > first and facts["width"] > 0 and facts["height"] > 0, facts
            text = await frame.evaluate("document.body.innerText")
            assert "the hills at sunset" in text and job["request_id"] in text and "5 s" in text

            await view.locator("#save").click()
            await page.wait_for_function("window.log.toolCalls.length > 0", timeout=20000)
            await frame.wait_for_function("document.getElementById('status').textContent.length > 0", timeout=20000)
            log = await page.evaluate("window.log")
            assert log["toolCalls"] == [
                {
                    "name": "get_result",
                    "arguments": {"request_id": job["request_id"], "download": True, "preview": False},
                }
            ]
            await view.locator("#open").click()
            await page.wait_for_function("window.log.openedLinks.length > 0", timeout=10000)

            # A job still running has no outputs yet: the player says where it stands.
            running = {"structuredContent": {"request_id": "sim-x", "status": "in_queue", "queue_position": 2}}
            await page.evaluate(
                "(result) => document.getElementById('view').contentWindow.postMessage("
                "{jsonrpc: '2.0', method: 'ui/notifications/tool-result', params: result}, '*')",
                running,
            )
            await frame.wait_for_function("document.body.innerText.includes('Waiting in the queue (position 2)')")

            # A sibling frame on the host's page forges a finished result: the player listens to its host only.
            forged = {"structuredContent": {"request_id": "forged-id", "status": "succeeded", "outputs": []}}
            await page.evaluate(
                "(result) => { const sibling = document.createElement('iframe');"
                " sibling.setAttribute('sandbox', 'allow-scripts');"
                " sibling.srcdoc = '<script>parent.frames[0].postMessage(' + JSON.stringify({jsonrpc: '2.0',"
                " method: 'ui/notifications/tool-result', params: result}) + ', \"*\"); parent.postMessage(' +"
                " '{\"forgedSent\": true}, \"*\")<' + '/script>';"
                " window.addEventListener('message', (e) => {"
                "   if (e.data && e.data.forgedSent) window.forgedSent = true; });"
                " document.body.appendChild(sibling); }",
                forged,
            )
            await page.wait_for_function("window.forgedSent === true", timeout=10000)
            await anyio.sleep(0.5)  # the forged message has reached the player, or never will
            text = await frame.evaluate("document.body.innerText")
            assert "forged-id" not in text and "Waiting in the queue (position 2)" in text
        finally:
            await browser.close()
    violations = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
    assert violations == [], violations
