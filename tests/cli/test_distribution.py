"""How the server is listed and bundled: the MCP Registry's server.json and the Claude Desktop bundle (MCPB)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from runcomfy_mcp import __version__

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules" / ".bin"


def node_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(TOOLS / "node"), str(TOOLS / argv[0]), *argv[1:]], capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT)  # fmt: skip


def test_the_registry_entry_has_what_the_registry_requires() -> None:
    """No JSON schema of the registry's is installable from a package registry here, so its documented required
    fields are checked: a namespaced name, a short description, the version, and the PyPI package it runs."""
    entry = json.loads((ROOT / "server.json").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert re.fullmatch(r"io\.github\.[A-Za-z0-9-]+/[A-Za-z0-9._-]+", entry["name"])
    assert 0 < len(entry["description"]) <= 100 and entry["version"] == __version__
    assert entry["$schema"].startswith("https://static.modelcontextprotocol.io/schemas/")
    (package,) = entry["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == project["name"]
    assert package["version"] == __version__ and package["transport"] == {"type": "stdio"}
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert variables["RUNCOMFY_API_TOKEN"]["isSecret"] is True and variables["RUNCOMFY_API_TOKEN"]["isRequired"]
    # PyPI ownership: the registry looks for this marker in the package's README (its long description).
    assert f"mcp-name: {entry['name']}" in (ROOT / "README.md").read_text()


def test_the_bundle_validates_and_packs(tmp_path: Path) -> None:
    assert (TOOLS / "mcpb").exists(), "run scripts/ensure-node-tools (the test set-up does)"
    manifest = json.loads((ROOT / "mcpb" / "manifest.json").read_text())
    assert manifest["version"] == __version__
    token = manifest["user_config"]["api_token"]
    assert token["sensitive"] is True and token["required"] is True
    assert manifest["server"]["mcp_config"]["env"]["RUNCOMFY_API_TOKEN"] == "${user_config.api_token}"
    assert manifest["server"]["mcp_config"]["args"][-1] == "runcomfy-mcp"  # the package's console script
    validated = node_tool("mcpb", "validate", "mcpb/manifest.json")
    assert validated.returncode == 0 and "passes" in validated.stdout, validated.stdout + validated.stderr
    bundle = tmp_path / "runcomfy.mcpb"
    packed = node_tool("mcpb", "pack", "mcpb", str(bundle))
    assert packed.returncode == 0, packed.stdout + packed.stderr
    with zipfile.ZipFile(bundle) as archive:
        assert {"manifest.json", "server/launch.py"} <= set(archive.namelist())


@pytest.mark.parametrize("path", ["server.json", "mcpb/manifest.json"])
def test_every_distribution_file_names_the_same_version(path: str) -> None:
    assert json.loads((ROOT / path).read_text())["version"] == __version__
