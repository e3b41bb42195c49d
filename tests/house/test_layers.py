"""The house: every import points down (mcp → core → media, store, upstream → domain), kept by import-linter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_points_down() -> None:
    done = lint_imports(ROOT / "server", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "back_arrow", "contract"),
    [
        ("domain/ids.py", "from runcomfy_mcp.core import jobs", "Layers"),
        ("media/sources.py", "import runcomfy_mcp.core.catalog", "Layers"),
        ("store/records.py", "from runcomfy_mcp.mcp import replies", "Layers"),
        ("upstream/client.py", "from runcomfy_mcp.settings import Settings", "never reach up"),
        ("domain/views.py", "import httpx", "imports nothing"),
        ("mcp/player.py", "from runcomfy_mcp.mcp import tools", "No cycles"),
    ],
)
def test_an_import_pointing_up_fails(tmp_path: Path, module: str, back_arrow: str, contract: str) -> None:
    copy = tmp_path / "server" / "runcomfy_mcp"
    shutil.copytree(ROOT / "server" / "runcomfy_mcp", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{back_arrow}  # noqa\n", encoding="utf-8")
    done = lint_imports(tmp_path / "server", tmp_path)
    assert done.returncode != 0, done.stdout
    broken = [line for line in done.stdout.splitlines() if line.rstrip().endswith("BROKEN")]
    assert any(contract in line for line in broken) or contract in done.stdout.split("Broken contracts")[-1], (
        done.stdout
    )
