"""A chat client starts a stdio server at every launch: listing tools must not pay for the core.

Each check runs in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Imported only when a tool first needs them (the start-up benchmark measures what this saves).
HEAVY = ["httpx", "sqlite3", "jsonschema", "stamina", "imagesize", "filetype", "PIL", "av", "runcomfy_mcp.sandbox"]

PROBE = """
import json, sys
import anyio
from mcp import Client
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.settings import Settings

HEAVY = json.loads(sys.argv[1])

def loaded():
    return sorted(name for name in HEAVY if name in sys.modules)

async def main():
    report = {}
    async with open_runtime(Settings()) as runtime, Client(build_server(runtime.tools)) as client:
        report["tools"] = len((await client.list_tools()).tools)
        report["after_list"] = loaded()
        result = await client.call_tool("list_jobs", {})
        report["list_jobs_error"] = result.is_error
        report["after_call"] = loaded()
    print(json.dumps(report))

anyio.run(main)
"""


def test_listing_tools_imports_no_heavy_module_and_the_first_call_loads_the_core(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RUNCOMFY_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["tools"] == 15
    assert report["after_list"] == []
    assert report["list_jobs_error"] is False
    assert {"httpx", "sqlite3"} <= set(report["after_call"])
    assert "runcomfy_mcp.sandbox" not in report["after_call"]
    assert (tmp_path / "data" / "jobs.sqlite3").exists()
