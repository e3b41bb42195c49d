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
from pydantic import ValidationError

from http_servers import free_port
from oauth_flow import KEY
from runcomfy_mcp.cli import build_settings, main, oauth_origin, parse_args
from runcomfy_mcp.errors import SetupError
from runcomfy_mcp.sandbox.serving import wait_for_port

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**{k: v for k, v in os.environ.items() if k != "RUNCOMFY_OAUTH_KEY"}, **env}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=60)


@pytest.mark.parametrize(
    ("argv", "key", "said"),
    [
        (["--transport", "http", "--auth", "oauth"], None, "needs RUNCOMFY_OAUTH_KEY"),
        (["--transport", "http", "--auth", "oauth"], "not-a-key", "is not a Fernet key"),
        (["--transport", "http", "--auth", "oauth", "--host", "0.0.0.0"], KEY, "--public-url"),
        (["--transport", "http", "--auth", "oauth", "--public-url", "http://mcp.example.com"], KEY, "needs https"),
        (["--transport", "http", "--auth", "oauth", "--shared-token"], KEY, "cannot go together"),
        (["--auth", "oauth"], KEY, "applies to --transport http"),
        (
            ["--transport", "http", "--auth", "oauth", "--public-url", "https://mcp.example.com/t"],
            KEY,
            "without a path",
        ),
    ],
    ids=["no-key", "bad-key", "public-host-no-url", "plain-http-url", "shared-token", "stdio", "url-with-path"],
)
def test_oauth_refuses_to_start_without_what_it_needs(
    argv: list[str], key: str | None, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if key is not None:
        monkeypatch.setenv("RUNCOMFY_OAUTH_KEY", key)
    args = parse_args(argv)
    with pytest.raises((SetupError, ValidationError)) as refused:
        oauth_origin(build_settings(args), args)
    assert said in str(refused.value) and "not-a-key" not in str(refused.value)  # a key is never echoed


def test_the_command_says_why_and_exits_2_before_listening() -> None:
    done = run("--transport", "http", "--auth", "oauth", "--public-url", "https://mcp.example.com")
    assert done.returncode == 2 and "needs RUNCOMFY_OAUTH_KEY" in done.stderr, done.stderr[-2000:]


def test_the_loopback_default_public_url_and_a_proxied_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_OAUTH_KEY", KEY)
    args = parse_args(["--transport", "http", "--auth", "oauth", "--port", "8123"])
    assert oauth_origin(build_settings(args), args) == "http://127.0.0.1:8123"
    proxied = parse_args(["--transport", "http", "--auth", "oauth", "--public-url", "https://MCP.example.com/"])
    assert oauth_origin(build_settings(proxied), proxied) == "https://mcp.example.com"
    passthrough = parse_args(["--transport", "http"])
    assert oauth_origin(build_settings(passthrough), passthrough) is None


def test_oauth_key_prints_a_new_key(capsys: pytest.CaptureFixture[str]) -> None:
    keys = []
    for _ in range(2):
        with pytest.raises(SystemExit) as done:
            main(["oauth-key"])
        assert done.value.code == 0
        keys.append(capsys.readouterr().out.strip())
    assert keys[0] != keys[1]
    Fernet(keys[0].encode())  # a key the server accepts


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
