"""The benchmark scripts keep working (their full-size runs live in benchmarks/, not in the tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


async def test_the_http_load_script_runs_clean_at_small_size() -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, str(BENCHMARKS / "load_http.py"), "--calls", "40", "--sessions", "4"],
            env=dict(os.environ),
            check=False,
        )
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()[-2000:]
    assert "failed calls            0" in output and "40 tool calls" in output


async def test_the_benchmark_runner_prints_its_table() -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, str(BENCHMARKS / "run.py"), "probe"], env=dict(os.environ), check=False
        )
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()[-2000:]
    assert "bytes read to check a 30 MB JPEG by URL" in output and "bytes read to check a 30 MB PNG by URL" in output
