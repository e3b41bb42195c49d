"""Every figure users feel, each against its simplest alternative, measured in one run.

    python benchmarks/run.py            # all sections, a table at the end
    python benchmarks/run.py overhead   # one section
    python benchmarks/run.py --quick    # every section at a small size, as the tests run it

Each section runs in its own process (so peak-memory figures are its own) and talks only to
loopback: a simulator of the API runs in a separate process (`python -m runcomfy_mcp.sandbox`).
The run exits non-zero, naming what failed, when a section crashes or misses a target; a quick
run is too small to judge speed or memory, so it judges crashes and counts (requests, bytes) only.
The measuring code is in sections.py, imported only by a section's own process.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
Section = Callable[..., Any]  # returns its rows, or (async) an awaitable of them

# The sections in the order a full run goes: each one's function in sections.py (or the function itself).
SECTIONS: dict[str, str | Section] = {
    "startup": "section_startup",
    "overhead": "section_overhead",
    "probe": "section_probe",
    "download": "section_download",
    "many": "section_many_jobs",
    "catalog": "section_catalog",
    "replicas": "section_replicas",
    "preview": "section_preview",
    "film": "section_film",
    "frame": "section_frame",
}
# --quick: the same code paths at sizes that take seconds, for the test suite.
QUICK: dict[str, dict[str, Any]] = {
    "startup": {"runs": 2},
    "overhead": {"calls": 60},
    "probe": {},
    "download": {"size_mb": 8, "rounds": 2},
    "many": {"jobs": 20, "job_seconds": 3.0},
    "catalog": {"models": 100, "searches": 20},
    "replicas": {"calls": 40, "callers": 4, "rounds": 20, "polled_jobs": 3},
    "preview": {"seconds": 2.0, "width": 320, "height": 180, "keyframe_s": 4.0, "huge": 3000, "rounds": 1},
    "film": {"clips": 2, "seconds": 1.0, "width": 320, "height": 180},
    "frame": {"seconds": 2.0, "width": 320, "height": 180},
}


def run_section(name: str, quick: bool) -> list[Row]:
    section = SECTIONS[name]
    if isinstance(section, str):
        import sections  # the measuring code and all it imports: loaded in a section's own process only

        section = getattr(sections, section)
    assert callable(section)
    options = QUICK[name] if quick else {}
    if inspect.iscoroutinefunction(section):
        import anyio

        rows: list[Row] = anyio.run(lambda: section(**options))
    else:
        rows = section(**options)
    return rows


def row(name: str, ours: float, ref: float | None, unit: str, *, counted: bool = False, **target: float) -> Row:
    """One measure against its target. `counted`: a count that does not depend on the machine's speed or the
    run's size (requests, bytes), so a quick run judges it too."""
    ratio = ours / ref if ref else None
    if "ratio_max" in target:
        ok, goal = ratio is not None and ratio <= target["ratio_max"], f"≤ {target['ratio_max']}×"
    elif "ratio_min" in target:
        ok, goal = ratio is not None and ratio >= target["ratio_min"], f"≥ {target['ratio_min']}×"
    elif "added_max" in target:
        ok, goal = ref is not None and ours - ref < target["added_max"], f"< +{target['added_max']} {unit}"
    else:
        ok, goal = ours < target["absolute_max"], f"< {target['absolute_max']} {unit}"
    return {"name": name, "ours": ours, "ref": ref, "unit": unit, "ratio": ratio, "goal": goal, "ok": ok,
            "counted": counted}  # fmt: skip


def print_table(rows: list[Row]) -> None:
    print(f"{'measure':52} {'ours':>10} {'reference':>10} {'ratio':>8}  {'target':>12}  ok")
    for r in rows:
        ref = f"{r['ref']:.1f}" if r["ref"] is not None else "—"
        if r["ratio"] is None:
            ratio = "—"
        elif r["goal"].startswith("< +"):  # an added-cost target: show what was added
            ratio = f"+{r['ours'] - r['ref']:.1f}"
        else:
            ratio = f"{r['ratio']:.2f}×" if r["ratio"] >= 0.1 else f"{r['ratio']:.2g}×"
        ours = f"{r['ours']:.1f} {r['unit']}".strip()
        print(f"{r['name']:52} {ours:>10} {ref:>10} {ratio:>8}  {r['goal']:>12}  {'yes' if r['ok'] else 'NO'}")


def crashed_row(name: str, returncode: int) -> Row:
    return {"name": f"{name} (crashed, exit {returncode})", "ours": float("nan"), "ref": None, "unit": "",
            "ratio": None, "goal": "runs", "ok": False, "counted": True}  # fmt: skip


def main(argv: list[str], script: str = __file__) -> int:
    """Runs each section in its own process; non-zero when one crashes or (full size) misses its target.

    `script` is the file each section's process runs: this one, or a script that adds sections to it.
    """
    quick = "--quick" in argv
    args = [a for a in argv[1:] if a != "--quick"]
    if len(args) == 1 and args[0].startswith("--section="):
        print("ROWS " + json.dumps(run_section(args[0].split("=", 1)[1], quick)))
        return 0
    unknown = [a for a in args if a not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    for name in args or list(SECTIONS):
        print(f"running {name} ...", flush=True)
        command = [sys.executable, script, f"--section={name}", *(["--quick"] if quick else [])]
        # Measure the defaults a user gets, whatever RUNCOMFY_* settings this shell has.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        found: list[Row] = []
        for line in done.stdout.splitlines():
            if line.startswith("ROWS "):
                found.extend(json.loads(line[5:]))
            elif line.strip():
                print(line)
        if done.returncode != 0 or not found:
            print(done.stderr[-3000:])
            found.append(crashed_row(name, done.returncode))
        rows.extend(found)
    print()
    print_table(rows)
    # A quick run is too small for speed and memory figures; counts (and crashes) hold at any size.
    judged = [r for r in rows if r.get("counted")] if quick else rows
    failed = [r for r in judged if not r["ok"]]
    if quick:
        print("\n(quick run: sizes reduced, so only crashes and counts are judged)")
    for r in failed:
        missed = "" if r["goal"] == "runs" else f": {r['ours']:.4g} {r['unit']}".rstrip() + f", target {r['goal']}"
        print(f"FAILED: {r['name']}{missed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
