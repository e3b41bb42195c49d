"""The package as users install it: a built wheel in a clean environment, by pip and by uvx."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mcp import Client, StdioServerParameters

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True, capture_output=True
    )
    (built,) = out.glob("runcomfy_mcp-*.whl")
    return built


def test_the_wheel_carries_its_data_and_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "runcomfy_mcp/mcp/player.html" in names and "runcomfy_mcp/sandbox/sample.jpg" in names
    assert sum(n.startswith("runcomfy_mcp/tool_specs/") and n.endswith(".json") for n in names) == 4
    for field in ("License-Expression: MIT", "Classifier: Topic :: Multimedia :: Video", "Project-URL:",
                  "Requires-Python: >=3.11", "Description-Content-Type: text/markdown"):  # fmt: skip
        assert field in metadata, field


async def test_installed_in_a_clean_environment_it_runs(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path.parent / "uv-cache")}
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel)], check=True, env=env
    )
    script = venv / "bin" / "runcomfy-mcp"
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "serve" in helped.stdout and "models" in helped.stdout
    params = StdioServerParameters(command=str(script), args=["--sandbox"], env={**env, "HOME": str(tmp_path)})
    async with Client(params) as client:
        assert len((await client.list_tools()).tools) == 15


async def test_uvx_runs_the_wheel(wheel: Path, tmp_path: Path) -> None:
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path.parent / "uv-cache"), "UV_TOOL_DIR": str(tmp_path / "tools")}
    uvx = [str(UV), "tool", "run", "--from", str(wheel), "runcomfy-mcp"]
    done = subprocess.run([*uvx, "--help"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "serve" in done.stdout and "install" in done.stdout
    params = StdioServerParameters(command=uvx[0], args=[*uvx[1:], "--sandbox"], env={**env, "HOME": str(tmp_path)})
    async with Client(params) as client:
        assert len((await client.list_tools()).tools) == 15
