"""The set-up scripts say what each step does, and when one fails, which and how: never a silent exit 1."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from http_servers import free_port

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script)], env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_an_unreachable_npm_registry_is_reported_not_swallowed(tmp_path: Path) -> None:
    done = run(
        "ensure-node-tools",
        RUNCOMFY_TOOLS_DIR=str(tmp_path / "tools"),
        npm_config_registry=f"http://127.0.0.1:{free_port()}/",  # nothing listens there
        npm_config_fetch_retries="0",
        npm_config_cache=str(tmp_path / "npm-cache"),
    )
    assert done.returncode != 0
    assert (
        "ensure-node-tools: installing node@22" in done.stderr
        and "from the npm registry (http://127.0.0.1:" in done.stderr
    )
    assert "ECONNREFUSED" in done.stderr  # npm's own reason
    assert "ensure-node-tools: FAILED while installing node@22" in done.stderr and "npm install" in done.stderr


def test_a_failing_step_of_the_test_command_is_named() -> None:
    done = run("test", PYTHON="false")  # a Python that cannot even answer its version
    assert done.returncode != 0 and done.stdout == ""
    assert "test: FAILED while checking that false is Python 3.11 or newer" in done.stderr


@pytest.mark.parametrize(
    ("script", "found"), [("ensure-postgres", "PostgreSQL is present: "), ("ensure-chromium", "Chromium is present: ")]
)
def test_a_present_dependency_is_named_with_where_it_was_found(script: str, found: str) -> None:
    done = run(script)
    assert done.returncode == 0 and found in done.stderr, done.stderr
