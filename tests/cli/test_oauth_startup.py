"""Starting the HTTP server: what --auth oauth needs, said before anything listens, and the warning a server exposed
beyond this machine without it gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from http_servers import free_port
from oauth_flow import KEY
from runcomfy_mcp.sandbox.serving import wait_for_port

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**{k: v for k, v in os.environ.items() if k != "RUNCOMFY_OAUTH_KEY"}, **env}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=60)


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--transport", "http", "--auth", "oauth"], {}, "needs RUNCOMFY_OAUTH_KEY"),
        (["--transport", "http", "--auth", "oauth"], {"RUNCOMFY_OAUTH_KEY": "not-a-key"}, "is not a Fernet key"),
        (["--transport", "http", "--auth", "oauth", "--host", "0.0.0.0"], {"RUNCOMFY_OAUTH_KEY": KEY}, "--public-url"),
        (
            ["--transport", "http", "--auth", "oauth", "--public-url", "http://mcp.example.com"],
            {"RUNCOMFY_OAUTH_KEY": KEY},
            "OAuth needs https",
        ),
        (
            ["--transport", "http", "--auth", "oauth", "--shared-token"],
            {"RUNCOMFY_OAUTH_KEY": KEY},
            "cannot go together",
        ),
        (["--auth", "oauth"], {"RUNCOMFY_OAUTH_KEY": KEY}, "applies to --transport http"),
        (
            ["--transport", "http", "--auth", "oauth", "--public-url", "https://mcp.example.com/team"],
            {"RUNCOMFY_OAUTH_KEY": KEY},
            "without a path",
        ),
    ],
    ids=["no-key", "bad-key", "public-host-no-url", "plain-http-url", "shared-token", "stdio", "url-with-path"],
)
def test_oauth_refuses_to_start_without_what_it_needs(args: list[str], env: dict[str, str], said: str) -> None:
    done = run(*args, **env)
    assert done.returncode == 2 and said in done.stderr, done.stderr[-2000:]
    assert "not-a-key" not in done.stderr  # a key, even a wrong one, is never echoed


def test_oauth_key_prints_a_new_key() -> None:
    first, second = run("oauth-key"), run("oauth-key")
    assert first.returncode == 0 and first.stdout.strip() != second.stdout.strip()
    Fernet(first.stdout.strip().encode())  # a key the server accepts


def test_a_server_on_a_public_address_without_oauth_says_so(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "stderr").open("wb")
    command = [str(SCRIPT), "--transport", "http", "--host", "0.0.0.0", "--port", str(port), "--sandbox"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
    try:
        anyio.run(wait_for_port, port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
    stderr = (tmp_path / "stderr").read_text()
    assert "WARNING" in stderr and "HTTP on 0.0.0.0 without --auth oauth" in stderr and "passthrough" in stderr


def test_the_public_host_passes_the_host_and_origin_checks() -> None:
    """Behind a reverse proxy requests name the public host; no --allowed-host is needed for it."""
    from argparse import Namespace

    from runcomfy_mcp.cli import transport_security

    settings = transport_security(Namespace(host="127.0.0.1", allowed_host=[]), "https://mcp.example.com")
    assert {"mcp.example.com", "mcp.example.com:*"} <= set(settings.allowed_hosts)
    assert "https://mcp.example.com" in settings.allowed_origins
    assert "evil.example" not in str(settings.allowed_hosts)
