"""The official MCP conformance suite's authorization-server scenarios against `runcomfy-mcp --sandbox --transport http
--auth oauth`, on both protocol generations: the metadata endpoint (RFC 8414, with Client ID Metadata Document
support) and the authorization code grant, whose browser part (the consent page, any token in sandbox mode) this test
plays; the grant once more for an app named by its Client ID Metadata Document rather than registered. These two are
all the suite has for a server's authorization: its `server` scenarios have no authorization checks, and its
`auth/*` scenarios test clients (against authorization servers of its own)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from test_conformance import SCRIPT, TOOLS

from conftest import TOKEN
from helpers import structured
from http_servers import free_port
from oauth_flow import LITE, LITE_ARGS, Connector, OAuthServer, consent, in_process

VERSIONS = ["2025-11-25", "2026-07-28"]


@pytest.fixture(scope="module")
def oauth_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env["RUNCOMFY_DATA_DIR"] = str(tmp_path_factory.mktemp("oauth-conformance"))
    command = [str(SCRIPT), "--transport", "http", "--sandbox", "--auth", "oauth", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client() as http:
            for _ in range(400):
                try:
                    http.get(f"{base}/.well-known/oauth-authorization-server")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def suite_command(*args: str) -> tuple[list[str], dict[str, str]]:
    conformance = TOOLS / "conformance"
    assert conformance.exists(), "run scripts/ensure-node-tools (the test set-up does)"
    env = {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}
    return [str(TOOLS / "node"), str(conformance), "authorization", *args], env


def suite(*args: str) -> subprocess.Popen[str]:
    command, env = suite_command(*args)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def allow(browser: httpx.Client, base: str, authorization_url: str) -> str:
    """The person: follows the link, pastes a token (any, in sandbox mode) and allows; the redirect's Location."""
    page = browser.get(browser.get(authorization_url).headers["location"])
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    answer = browser.post(
        f"{base}/consent", data={**fields, "runcomfy_token": "any-token", "decision": "allow"}, headers={"Origin": base}
    )
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spec_version", VERSIONS)
def test_authorization_server_scenarios(oauth_sandbox: str, spec_version: str, tmp_path: Path) -> None:
    callback_port = free_port()
    redirect_uri = f"http://127.0.0.1:{callback_port}/callback"
    with httpx.Client() as browser:
        registered = browser.post(
            f"{oauth_sandbox}/register",
            json={
                "client_name": "MCP conformance",
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
            },
        )
        client_id = registered.json()["client_id"]
        running = suite(
            "--url", oauth_sandbox, "--client-id", client_id, "--port", str(callback_port),
            "--resource", f"{oauth_sandbox}/mcp", "--spec-version", spec_version,
        )  # fmt: skip
        try:
            assert running.stdout is not None
            seen = ""
            for line in running.stdout:  # the suite prints the URL a person would open, then waits for the callback
                seen += line
                if line.startswith(f"{oauth_sandbox}/authorize?"):
                    break
            else:
                pytest.fail(seen[-3000:])
            location = allow(browser, oauth_sandbox, line.strip())
            assert location.startswith(redirect_uri + "?")
            for _ in range(100):  # the suite's callback listener starts after it printed the URL
                try:
                    browser.get(location)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            rest, _ = running.communicate(timeout=60)
        finally:
            if running.poll() is None:
                running.kill()
    output = seen + rest
    assert running.returncode == 0, output[-3000:]
    assert "authorization-server-metadata-endpoint: 2 passed, 0 failed" in output, output[-3000:]
    assert "authorization-code-grant: 1 passed, 0 failed" in output, output[-3000:]


@pytest.mark.anyio
async def test_the_sandbox_runs_the_whole_connector_flow_offline_with_any_token(oauth_sandbox: str) -> None:
    connector = Connector(OAuthServer(oauth_sandbox, None), "whatever-i-type")
    async with connector.client() as client:
        job = structured(await client.call_tool(LITE, LITE_ARGS))
        listed = structured(await client.call_tool("list_jobs", {}))
    assert job["request_id"].startswith("sim-")  # the simulator ran it: nothing left the machine
    assert [j["request_id"] for j in listed["jobs"]] == [job["request_id"]]


DOCUMENT_URL = "https://app.example/oauth/client.json"


@pytest.mark.anyio
@pytest.mark.timeout(120)
@pytest.mark.parametrize("spec_version", VERSIONS)
async def test_the_code_grant_for_an_app_named_by_its_metadata_document(api_url: str, spec_version: str) -> None:
    """The suite's client is given a Client ID Metadata Document URL as its client_id: nothing is registered, the
    server fetches the document (from the app's host, played by the test) and the grant passes as for a registered
    app."""
    callback_port = free_port()
    document = {
        "client_id": DOCUMENT_URL,
        "client_name": "MCP conformance (by its document)",
        "redirect_uris": [f"http://127.0.0.1:{callback_port}/callback"],
        "token_endpoint_auth_method": "none",
    }
    fetched: list[str] = []

    def app_host(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=document) if str(request.url) == DOCUMENT_URL else httpx.Response(404)

    async with in_process(api_url, transport=httpx.MockTransport(app_host)) as server, httpx.AsyncClient() as browser:
        # No --scenario: the grant reads what the metadata scenario found, so both run.
        command, env = suite_command(
            "--url", server.base, "--client-id", DOCUMENT_URL, "--port", str(callback_port),
            "--resource", server.mcp, "--spec-version", spec_version,
        )  # fmt: skip
        output = ""
        async with await anyio.open_process(command, env=env, stderr=subprocess.STDOUT) as running:
            assert running.stdout is not None
            with anyio.fail_after(60):
                async for chunk in running.stdout:  # the suite prints the URL a person would open, then waits
                    output += chunk.decode()
                    found = re.search(rf"^{re.escape(server.base)}/authorize\?\S+$", output, re.MULTILINE)
                    if found:
                        break
                else:
                    pytest.fail(output[-3000:])
                location = await consent(browser, server.base, found.group(0), TOKEN)
                for _ in range(100):  # the suite's callback listener starts after it printed the URL
                    try:
                        await browser.get(location)
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.05)
                async for chunk in running.stdout:
                    output += chunk.decode()
                await running.wait()
    assert running.returncode == 0, output[-3000:]
    assert "authorization-server-metadata-endpoint: 2 passed, 0 failed" in output, output[-3000:]
    assert "authorization-code-grant: 1 passed, 0 failed" in output, output[-3000:]
    assert fetched and set(fetched) == {DOCUMENT_URL}
