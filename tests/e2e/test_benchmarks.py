"""The benchmark scripts keep working: every section runs here at a small size, and a crash fails the test.

Full-size runs (and their speed targets) live in benchmarks/, not in the tests; what a quick run can
judge is whether each section still runs, and the counts that do not depend on size or speed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

# What each section must print in a quick run.
SECTION_ROWS = {
    "startup": ["start-up to tools/list (stdio)"],
    "overhead": [
        "get_status median, in-memory client (auto)",
        "get_status median, in-memory client (legacy)",
        "get_status median over HTTP, OAuth vs passthrough",
        "OAuth sign-in (register to token), median",
        "OAuth token lookup alone, median",
    ],
    "probe": ["bytes read to check a 30 MB JPEG by URL", "bytes read to check a 30 MB PNG by URL"],
    "download": [
        "8 MB download, in-process (best of 2)",
        "8 MB download, in-process: server memory growth",
        "8 MB download, own process, stdio (best of 2)",
        "8 MB download, own process, stdio: server memory growth",
    ],
    "many": [
        "server peak memory, 20 jobs waited on at once",
        "status and result requests per job",
        "last wait's answer after the last job ended",
    ],
    "catalog": [  # the simulator's catalog grows with the models it simulates: no counts here
        "models: requests",
        "warm start: catalog requests",
        "models (core)",
        "tools/list bytes",
    ],
    "replicas": [
        "get_status median, PostgreSQL vs SQLite",
        "40 calls, 4 callers, 2 replicas: failed calls",
        "40 calls: throughput, 2 replicas vs 1",
        "polls per job, a waiter on each of 2 replicas vs one",
    ],
    "preview": [
        "preview of a 2 s 180p clip: size",
        "preview of a 4 s 180p clip, one keyframe: worker peak memory",
        "preview of a 3000×3000 MOV",
        "previews: the server's own memory growth",
    ],
    "film": [
        "compose 2 × 1 s 180p clips, crossfades, music: seconds",
        "compose 2 × 1 s 180p clips, crossfades, music: peak memory growth",
    ],
    "frame": [
        "last frame of a 2 s 180p clip (a keyframe every 2 s)",
        "last frame of a 2 s 180p clip (one keyframe, at the start)",
    ],
}


async def run_benchmarks(*args: str, script: Path = BENCHMARKS / "run.py", limit_s: float = 170) -> tuple[int, str]:
    with anyio.fail_after(limit_s):
        done = await anyio.run_process([sys.executable, str(script), *args], env=dict(os.environ), check=False)
    return done.returncode, done.stdout.decode() + done.stderr.decode()[-3000:]


def test_every_benchmark_section_is_run_by_the_tests() -> None:
    spec = importlib.util.spec_from_file_location("benchmarks_run", BENCHMARKS / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.SECTIONS) == set(SECTION_ROWS) == set(module.QUICK)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("section", SECTION_ROWS)
async def test_each_benchmark_section_runs_at_small_size(section: str) -> None:
    code, output = await run_benchmarks("--quick", section)
    # Non-zero when the section crashed, or missed a target that holds at any size (a count, not a speed).
    assert code == 0, output
    table = output.split("measure", 1)[1]
    for measure in SECTION_ROWS[section]:
        assert measure in table, output


HARNESS = """
import sys
sys.path.insert(0, {benchmarks!r})
import run


async def section_crashes() -> list:
    raise RuntimeError("a submit returned no request_id")


def section_slow() -> list:
    return [run.row("a figure that misses", 3.0, None, "s", absolute_max=1)]


def section_overcounts() -> list:
    return [run.row("requests per job", 11, 10, "", ratio_max=1.0, counted=True)]


def section_fine() -> list:
    return [run.row("a figure that holds", 0.5, None, "s", absolute_max=1)]


for name, section in [("crashes", section_crashes), ("slow", section_slow), ("overcounts", section_overcounts),
                      ("fine", section_fine)]:
    run.SECTIONS[name] = section
    run.QUICK[name] = {{}}
raise SystemExit(run.main(sys.argv, script=__file__))
"""


@pytest.fixture
def harness(tmp_path: Path) -> Path:
    """The benchmark runner with made-up sections: one crashes, one misses a timing, one a count, one holds."""
    script = tmp_path / "harness.py"
    script.write_text(HARNESS.format(benchmarks=str(BENCHMARKS)))
    return script


async def test_a_crashing_section_fails_the_run_and_is_named(harness: Path) -> None:
    for quick in ([], ["--quick"]):
        code, output = await run_benchmarks(*quick, "fine", "crashes", script=harness, limit_s=60)
        assert code == 1, output
        assert "FAILED: crashes (crashed, exit 1)" in output and "a submit returned no request_id" in output
        assert "a figure that holds" in output and "FAILED: a figure that holds" not in output


async def test_a_missed_target_fails_the_full_run_and_is_named(harness: Path) -> None:
    code, output = await run_benchmarks("fine", "slow", script=harness, limit_s=60)
    assert code == 1 and "FAILED: a figure that misses: 3 s, target < 1 s" in output, output
    code, output = await run_benchmarks("fine", script=harness, limit_s=60)
    assert code == 0 and "FAILED" not in output, output


async def test_a_quick_run_judges_counts_but_not_speed(harness: Path) -> None:
    code, output = await run_benchmarks("--quick", "slow", script=harness, limit_s=60)
    assert code == 0, output
    code, output = await run_benchmarks("--quick", "overcounts", script=harness, limit_s=60)
    assert code == 1 and "FAILED: requests per job: 11, target ≤ 1.0×" in output, output


async def test_the_http_load_script_runs_clean_at_small_size() -> None:
    code, output = await run_benchmarks("--calls", "40", "--sessions", "4", script=BENCHMARKS / "load_http.py")
    assert code == 0, output
    assert "failed calls            0" in output and "40 tool calls" in output


async def test_the_benchmark_runner_refuses_an_unknown_section() -> None:
    code, output = await run_benchmarks("startpu", limit_s=60)
    assert code == 2 and "unknown section" in output
