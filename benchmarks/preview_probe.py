"""One file's preview, made as the server makes it, measured: time, the worker's peak memory, the server's growth.

    python benchmarks/preview_probe.py video clip.mp4 [rounds]

Run in a process of its own (by run.py's preview section), so the worker peak it reports is this
file's alone. Prints one JSON line: times_ms, cpu_ms (the worker's CPU time per preview, which a busy
machine does not inflate), worker_peak_mb, server_growth_mb, jpeg_kb, outcome.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from runcomfy_mcp.errors import PreviewError
from runcomfy_mcp.media.previews import Previewer


def peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


async def probe(kind: str, path: Path, rounds: int) -> dict[str, object]:
    server_before = peak_mb(resource.RUSAGE_SELF)
    times, jpeg_kb, outcome = [], 0.0, "preview"
    with tempfile.TemporaryDirectory() as folder:
        async with httpx.AsyncClient() as http:
            previewer = Previewer(http, Path(folder), max_bytes=1 << 30, deadline_s=60)
            for _ in range(rounds):
                started = time.perf_counter()
                try:
                    made = await previewer.decode(path, kind)
                    jpeg_kb, outcome = len(made.jpeg) / 1024, made.words()
                except PreviewError as exc:
                    outcome = f"No preview: {exc.message}"
                times.append((time.perf_counter() - started) * 1000)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "times_ms": times,
        "cpu_ms": (children.ru_utime + children.ru_stime) * 1000 / rounds,
        "worker_peak_mb": peak_mb(resource.RUSAGE_CHILDREN),
        "server_growth_mb": peak_mb(resource.RUSAGE_SELF) - server_before,
        "jpeg_kb": jpeg_kb,
        "outcome": outcome,
    }


def main(argv: list[str]) -> int:
    kind, path = argv[1], Path(argv[2])
    rounds = int(argv[3]) if len(argv) > 3 else 3
    print(json.dumps(anyio.run(probe, kind, path, rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
