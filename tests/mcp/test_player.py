"""The player in a real browser: Debian's Chromium, headless, driven by Playwright (nothing downloaded).

The host page is built on the MCP Apps SDK's own host side (`AppBridge` and `PostMessageTransport` from npm's
@modelcontextprotocol/ext-apps, bundled with esbuild; scripts/ensure-node-tools installs both). It reads the UI
resource from the server over streamable HTTP, mounts it in a sandboxed iframe with the CSP the resource
declares, and passes the player's tool calls, resource reads, links and downloads on, as a chat host does.
Videos must really play, no CSP violation may be reported.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("RUNCOMFY_TOOLS_DIR", ROOT / ".tools"))
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
PHOTO = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
TOOL = "seedance_1_0_lite_image_to_video"
# What a chat host offers the player (ui/initialize's hostCapabilities); some also download files for it.
OFFERS = {"openLinks": {}, "serverTools": {}, "serverResources": {}}
DOWNLOADS = {**OFFERS, "downloadFile": {}}
DARK = {"--color-background-primary": "rgb(16, 18, 24)", "--color-text-primary": "rgb(230, 232, 235)"}
LIGHT = {"--color-background-primary": "rgb(250, 250, 245)", "--color-text-primary": "rgb(20, 20, 20)"}


@pytest.fixture(scope="session")
def bridge_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK's host side as one browser module (esbuild resolves it from the Node tools' node_modules)."""
    esbuild = TOOLS / "node_modules" / ".bin" / "esbuild"
    assert esbuild.exists(), "run scripts/ensure-node-tools (the test set-up does): it installs ext-apps and esbuild"
    out = tmp_path_factory.mktemp("bridge") / "bridge.js"
    entry = 'export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";'
    subprocess.run(
        [str(esbuild), "--bundle", "--format=esm", "--platform=browser", "--log-level=warning", f"--outfile={out}"],
        input=entry, text=True, cwd=TOOLS, check=True, timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture
async def sandbox_server(tmp_path: Path) -> AsyncIterator[str]:
    """`runcomfy-mcp --transport http --sandbox`: jobs of a few seconds, videos made from the job's image."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env |= {"RUNCOMFY_DATA_DIR": str(tmp_path / "data"), "RUNCOMFY_OUTPUT_DIR": str(tmp_path / "videos"),
            "RUNCOMFY_SANDBOX_TIME_SCALE": "0.4"}  # fmt: skip
    command = [str(SCRIPT), "--transport", "http", "--sandbox", "--shared-token", "--port", str(port)]
    process = await anyio.open_process(command, env=env, stdout=None, stderr=None)
    try:
        await wait_for_port(port, timeout_s=20)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


def host_app(mcp_url: str, bridge_js: Path) -> Starlette:
    """The host page and the SDK's bridge, and /mcp passed through to the server (the page's own origin)."""
    http = httpx.AsyncClient(timeout=60)

    async def page(request: Request) -> Response:
        return FileResponse(HOST_PAGE, media_type="text/html")

    async def bridge(request: Request) -> Response:
        return FileResponse(bridge_js, media_type="text/javascript")

    async def mcp(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        answer = await http.request(request.method, mcp_url, headers=headers, content=await request.body())
        kept = {k: v for k, v in answer.headers.items() if k.lower() in FORWARDED}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    routes = [Route("/", page), Route("/bridge.js", bridge), Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])]
    return Starlette(routes=routes)


class Chat:
    """The host page in Chromium, with the player mounted in it."""

    def __init__(self, page: Any, console: list[str]) -> None:
        self.page = page
        self.console = console

    async def mount(self, tool: str, args: dict[str, Any], capabilities: dict[str, Any],
                    context: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        await self.page.wait_for_function("window.log && window.log.stage === 'loaded'")
        await self.page.evaluate("(o) => window.mount(o)", {"tool": tool, "args": args, "capabilities": capabilities,
                                                            "context": context})  # fmt: skip
        log: dict[str, Any] = await self.page.evaluate("window.log")
        assert not log["errors"], log["errors"]
        return log

    async def until(self, expression: str, timeout_s: float = 10) -> None:
        """Polled from here: the player's CSP forbids the eval that Playwright's own waiting in the frame uses."""
        with anyio.fail_after(timeout_s):
            while not await self.view.evaluate(expression):
                await anyio.sleep(0.1)

    @property
    def view(self) -> Any:
        return next(f for f in self.page.frames if f != self.page.main_frame)

    async def log(self) -> dict[str, Any]:
        return await self.page.evaluate("window.log")  # type: ignore[no-any-return]

    async def text(self) -> str:
        return await self.view.evaluate("document.body.innerText")  # type: ignore[no-any-return]

    async def playing(self) -> dict[str, Any]:
        """The video has frames and its time moves on."""
        ready = "() => { const v = document.querySelector('video'); return v !== null && v.readyState >= 2; }"
        await self.until(ready, timeout_s=30)
        first = await self.view.evaluate("document.querySelector('video').currentTime")
        await anyio.sleep(1.0)
        facts: dict[str, Any] = await self.view.evaluate(
            "(() => { const v = document.querySelector('video');"
            " return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight, paused: v.paused,"
            " duration: v.duration, error: v.error && v.error.code}; })()"
        )
        assert facts["error"] is None and not facts["paused"], facts
        assert facts["time"] > first and facts["width"] > 0 and facts["height"] > 0, facts
        return facts

    async def background(self) -> str:
        return await self.view.evaluate("getComputedStyle(document.body).backgroundColor")  # type: ignore[no-any-return]


@asynccontextmanager
async def chat(sandbox_server: str, bridge_js: Path) -> AsyncIterator[Chat]:
    from playwright.async_api import async_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/ensure-chromium installs it (the test set-up runs it)"
    console: list[str] = []
    async with serve_on_loopback(host_app(sandbox_server, bridge_js)) as host, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        try:
            page = await browser.new_page()
            page.on("console", lambda message: console.append(message.text))
            await page.goto(f"{host}/")
            yield Chat(page, console)
        finally:
            await browser.close()
    violations = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
    assert violations == [], violations


async def submit(sandbox_server: str, prompt: str, *, wait: bool = False) -> dict[str, Any]:
    async with Client(streamable_http_client(sandbox_server)) as client:
        job = structured(
            await client.call_tool(TOOL, {"prompt": prompt, "first_frame_image_url": PHOTO, "duration": 5})
        )
        if wait:
            done = structured(await client.call_tool("wait_for_result", {"request_id": job["request_id"]}))
            assert done["status"] == "succeeded", done
        return job


async def test_a_finished_job_plays_and_save_keeps_it_on_the_server(sandbox_server: str, bridge_js: Path) -> None:
    job = await submit(sandbox_server, "the hills at sunset")
    async with chat(sandbox_server, bridge_js) as page:
        log = await page.mount("wait_for_result", {"request_id": job["request_id"], "timeout_s": 30}, OFFERS,
                               {"theme": "light", "displayMode": "inline"})  # fmt: skip
        assert log["resource"]["mimeType"] == "text/html;profile=mcp-app"
        assert log["result"]["structuredContent"]["status"] == "succeeded"
        await page.playing()
        text = await page.text()
        assert "the hills at sunset" in text and job["request_id"] in text and "5 s" in text
        assert "Sandbox: simulated, not charged" in text and "Cost\nabout $" in text, text

        # The frame is as tall as what it shows: no blank space under the buttons (the body's 12 px padding).
        room = "() => innerHeight - document.querySelector('.actions').getBoundingClientRect().bottom"
        with anyio.move_on_after(10):
            while not 12 <= await page.view.evaluate(room) < 13:  # the height asked for is rounded up
                await anyio.sleep(0.1)
        sizes = (await page.log())["sizes"]
        assert 12 <= await page.view.evaluate(room) < 13, (await page.view.evaluate(room), sizes)

        # A host without ui/download-file: Save asks the server to download, and says so in one short line.
        await page.view.locator("#save").click()
        said = "() => { const line = document.getElementById('status').textContent; return line && line != 'Saving…'; }"
        await page.until(said, timeout_s=30)
        line = await page.view.evaluate("document.getElementById('status').textContent")
        assert line.startswith("Saved on the server as ") and line.endswith(".mp4.") and len(line) < 160, line
        assert "\n" not in line and "SANDBOX" not in line, line
        log = await page.log()
        assert log["toolCalls"] == [
            {"name": "get_result", "arguments": {"request_id": job["request_id"], "download": True, "preview": False}}
        ]
        await page.view.locator("#open").click()
        await page.page.wait_for_function("window.log.openedLinks.length > 0", timeout=10000)

        # A sibling frame on the host's page forges a finished result: the player listens to its host only.
        forged = {"structuredContent": {"request_id": "forged-id", "status": "succeeded", "outputs": []}}
        await page.page.evaluate(
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
        await page.page.wait_for_function("window.forgedSent === true", timeout=10000)
        await anyio.sleep(0.5)  # the forged message has reached the player, or never will
        text = await page.text()
        assert "forged-id" not in text and job["request_id"] in text


async def test_a_running_job_becomes_its_video_in_the_hosts_theme(sandbox_server: str, bridge_js: Path) -> None:
    async with chat(sandbox_server, bridge_js) as page:
        args = {"prompt": "a lighthouse at night", "first_frame_image_url": PHOTO, "duration": 5}
        log = await page.mount(TOOL, args, DOWNLOADS, {"theme": "dark", "styles": {"variables": DARK}})
        request_id = log["result"]["structuredContent"]["request_id"]
        assert log["result"]["structuredContent"]["status"] == "in_queue"
        text = await page.text()
        assert "Waiting in the queue" in text or "Generating" in text, text
        assert "Sandbox: simulated, not charged" in text and "about $" in text, text
        # The host's dark theme: its variables, and the player's own dark colours under them.
        assert await page.background() == "rgb(16, 18, 24)"
        assert await page.view.evaluate("document.documentElement.dataset.theme") == "dark"

        # The player keeps itself current through the host (get_status), then shows the video.
        await page.playing()
        calls = [call["name"] for call in (await page.log())["toolCalls"]]
        assert calls[0] == "get_status" and calls[-1] == "get_result" and set(calls) == {"get_status", "get_result"}
        text = await page.text()
        assert "a lighthouse at night" in text and "Cost\n$" in text, text

        # The host changes theme: the player follows, with the host's variables or (none given) its own.
        await page.page.evaluate("(v) => window.bridge.setHostContext({theme: 'light', styles: {variables: v}})", LIGHT)
        await page.until("getComputedStyle(document.body).backgroundColor === 'rgb(250, 250, 245)'")
        assert await page.view.evaluate("document.documentElement.dataset.theme") == "light"
        await page.page.evaluate("window.bridge.setHostContext({theme: 'dark'})")
        await page.until("getComputedStyle(document.body).backgroundColor === 'rgb(23, 23, 23)'")

        # A host that downloads files: Save hands it the video's link, and nothing is saved on the server.
        await page.view.locator("#save").click()
        await page.page.wait_for_function("window.log.downloads.length > 0", timeout=10000)
        log = await page.log()
        (link,) = log["downloads"][0]
        video_url = await page.view.evaluate("document.querySelector('video').src")
        assert link["type"] == "resource_link" and link["uri"] == video_url and link["name"].endswith(".mp4"), link
        assert all(not call["arguments"].get("download") for call in log["toolCalls"])
        await page.until("document.getElementById('status').textContent.startsWith('Downloaded ')")
        assert request_id in await page.text()


async def test_a_composed_film_plays_with_its_shots(sandbox_server: str, bridge_js: Path) -> None:
    first = await submit(sandbox_server, "a boat leaves the harbour", wait=True)
    second = await submit(sandbox_server, "the boat at sea", wait=True)
    clips = [{"source": first["request_id"]}, {"source": second["request_id"], "start_s": 1}]
    async with chat(sandbox_server, bridge_js) as page:
        log = await page.mount("compose_video", {"clips": clips, "transition": "crossfade"}, DOWNLOADS,
                               {"theme": "light"})  # fmt: skip
        film = log["result"]["structuredContent"]
        assert film["kind"] == "film" and len(film["shots"]) == 2, film
        facts = await page.playing()
        assert abs(facts["duration"] - film["duration_s"]) < 0.1, (facts, film)
        assert (await page.log())["resourceReads"] == [film["film_uri"]]  # read through the host, as resources are
        shots = page.view.locator(".shots button")
        assert await shots.count() == 2
        text = await page.text()
        assert first["request_id"] in text and second["request_id"] in text and film["request_id"] in text

        # A click on a shot goes to where it starts in the film.
        second_at = film["shots"][1]["at_s"]
        await shots.nth(1).click()
        await page.until(
            f"() => {{ const t = document.querySelector('video').currentTime; return t >= {second_at}"
            f" && t < {second_at + 1.5}; }}",
            timeout_s=10,
        )
        await page.until("document.querySelectorAll('.shots button')[1].ariaCurrent === 'true'")

        # Save hands the host the film itself, as a resource with its bytes.
        await page.view.locator("#save").click()
        await page.page.wait_for_function("window.log.downloads.length > 0", timeout=10000)
        (embedded,) = (await page.log())["downloads"][0]
        assert embedded["type"] == "resource" and embedded["resource"]["uri"] == film["film_uri"]
        assert len(base64.b64decode(embedded["resource"]["blob"])) == film["size_bytes"]
