"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, from npm) against the HTTP server,
in both protocol generations, for every scenario that applies to this server.

Scenarios that exercise the suite's own fixture tools, prompts and resources (`test_image_content`,
`test://static-text`, …) or features this server does not offer are listed below with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules" / ".bin"
SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")

APPLIES = {
    "2025-11-25": [
        "server-initialize",
        "ping",
        "completion-complete",
        "tools-list",
        "tools-call-error",
        "server-sse-multiple-streams",
        "resources-list",
        "prompts-list",
        "dns-rebinding-protection",
    ],
    "2026-07-28": [
        "completion-complete",
        "tools-list",
        "tools-call-error",
        "resources-list",
        "sep-2164-resource-not-found",
        "prompts-list",
        "dns-rebinding-protection",
        "caching",
        "input-required-result-missing-input-response",
        "input-required-result-unsupported-methods",
        "input-required-result-ignore-extra-params",
        "input-required-result-validate-input",
        "http-header-validation",
    ],
}
DOES_NOT_APPLY = {
    "tools-call-image, -audio, -embedded-resource, -mixed-content, -with-logging, -with-progress, -sampling, "
    "-elicitation": "call the suite's fixture tools (test_image_content, test_tool_with_progress, …)",
    "resources-read-text, -read-binary, -templates-read, -subscribe, -unsubscribe": "read the suite's fixture "
    "resources (test://static-text, test://template/{id}/data); this server's own templates are read in tests",
    "prompts-get-simple, -with-args, -embedded-resource, -with-image": "get the suite's fixture prompts "
    "(test_simple_prompt, …); this server's prompts are tested in test_prompts.py",
    "elicitation-sep1034-defaults, elicitation-sep1330-enums, input-required-result-basic-*, -request-state, "
    "-multiple-input-requests, -multi-round, -non-tool-request, -result-type, -tampered-state, "
    "-capability-check": "call the suite's fixture tools that elicit, sample or list roots",
    "logging-set-level": "this server declares no logging capability (its logs go to stderr)",
    "server-sse-polling": "needs an event store for resumable streams, which this server does not keep",
    "server-stateless": "2 of its 25 checks call the suite's fixture tool test_missing_capability (the other 23 "
    "pass; its subscription checks are skipped: subscriptions/listen is not offered)",
    "tasks-*": "the tasks extension is not offered",
}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """`runcomfy-mcp --transport http --sandbox --shared-token`: no token needed, nothing leaves the machine."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env["RUNCOMFY_DATA_DIR"] = str(ROOT / ".tools" / "conformance-data")
    command = [str(SCRIPT), "--transport", "http", "--sandbox", "--shared-token", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("spec_version", "scenario"), [(version, s) for version, names in APPLIES.items() for s in names]
)
def test_conformance(server_url: str, spec_version: str, scenario: str) -> None:
    conformance = TOOLS / "conformance"
    assert conformance.exists(), "run scripts/ensure-node-tools (the test set-up does)"
    env = {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}  # its own Node 22 first
    done = subprocess.run(
        [str(TOOLS / "node"), str(conformance), "server", "--url", server_url, "--scenario", scenario,
         "--spec-version", spec_version],
        capture_output=True, text=True, env=env, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert ", 0 failed" in done.stdout and "Passed: 0/" not in done.stdout, done.stdout[-2000:]
