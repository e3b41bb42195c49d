"""The benchmark scripts keep working (their full-size runs live in benchmarks/, not in the tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


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


@pytest.mark.timeout(180)
async def test_every_benchmark_section_runs_and_prints_its_row() -> None:
    with anyio.fail_after(170):
        done = await anyio.run_process(
            [sys.executable, str(BENCHMARKS / "run.py"), "--quick"], env=dict(os.environ), check=False
        )
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()[-2000:]
    table = output.split("measure", 1)[1]
    for measure in (
        "start-up to tools/list (stdio)",
        "get_status median, in-memory client (auto)",
        "get_status median, in-memory client (legacy)",
        "bytes read to check a 30 MB JPEG by URL",
        "bytes read to check a 30 MB PNG by URL",
        "8 MB download throughput",
        "8 MB download peak memory growth",
        "peak memory, 20 jobs waited on at once",
        "status requests per job",
        "cold catalog fetch of 113 models: requests",
        "warm start: catalog requests",
        "find_models median, 113 models (core)",
        "tools/list bytes (14 tools)",
        "get_status median, PostgreSQL vs SQLite",
        "40 calls, 4 callers, 2 replicas: failed calls",
        "40 calls: throughput, 2 replicas vs 1",
        "preview of a 2 s 180p clip: size",
        "preview of a 4 s 180p clip, one keyframe: worker peak memory",
        "preview of a 3000×3000 MOV",
        "previews: the server's own memory growth",
    ):
        assert measure in table, output
    assert "crashed" not in table and "20/20 finished" in output
    # Not a speed figure: a wait never polls more often than its schedule, however slow the machine.
    polls = next(line for line in table.splitlines() if line.startswith("status requests per job"))
    assert polls.rstrip().endswith("yes"), polls


async def test_the_benchmark_runner_refuses_an_unknown_section() -> None:
    done = await anyio.run_process([sys.executable, str(BENCHMARKS / "run.py"), "startpu"], check=False)
    assert done.returncode == 2 and b"unknown section" in done.stderr
