"""RUNCOMFY_DATABASE_URL as an operator gets it wrong: no driver installed, a URL that does not parse, no server.

The console script is run as a team would run it, and everything it writes (results, its log) is read.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from conftest import TOKEN
from helpers import text_of
from http_servers import SCRIPT, free_port, http_client, http_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

PASSWORD = "hunter2-Swordfish"


def test_a_database_url_without_the_driver_is_refused_at_start(tmp_path: Path) -> None:
    hidden = tmp_path / "no-driver" / "psycopg"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'psycopg'\")\n")
    env = server_env(
        "http://127.0.0.1:9",
        RUNCOMFY_DATABASE_URL=f"postgresql://bob:{PASSWORD}@127.0.0.1:5432/jobs",
        PYTHONPATH=str(hidden.parent),
    )
    done = subprocess.run(
        [str(SCRIPT), "--transport", "http", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'runcomfy-mcp[postgres]'" in done.stderr and "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "url",
    [f"postgresql://bob:{PASSWORD} x@127.0.0.1:5432/jobs", f"postgresql://bob:{PASSWORD}@127.0.0.1:{{port}}/jobs"],
    ids=["unparseable", "unreachable"],
)
async def test_a_database_that_cannot_be_used_never_shows_its_password(api_url: str, url: str) -> None:
    url = url.format(port=free_port())
    log: list[str] = []
    async with (
        http_server(api_url, env={"RUNCOMFY_DATABASE_URL": url}, log=log) as mcp_url,
        http_client(mcp_url, TOKEN) as client,
    ):
        with anyio.fail_after(5):  # at once, not after a pool's 15 s
            result = await client.call_tool("list_jobs", {})
    assert result.is_error and "RUNCOMFY_DATABASE_URL" in text_of(result)
    assert "internal error" not in text_of(result) and "PoolTimeout" not in text_of(result)
    assert PASSWORD not in str(result.model_dump())
    assert log and PASSWORD not in "\n".join(log)
