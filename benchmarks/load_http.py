"""Load: 200 concurrent tool calls over streamable HTTP against one server (sandbox mode, loopback only).

    python benchmarks/load_http.py [--calls 200] [--sessions 20]

Starts `runcomfy-mcp --transport http --sandbox --shared-token` on a free loopback port, opens
`--sessions` MCP sessions and keeps `--calls` tool calls in flight at once (submits, status
checks and history reads), then prints latency percentiles and failures. Exits 1 if any call failed.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from PIL import Image

from mcp import Client

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")


def sample_image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str) -> None:
    with anyio.fail_after(30):
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    await http.get(url)
                    return
                except httpx.TransportError:
                    await anyio.sleep(0.05)


async def main(calls: int, sessions: int) -> int:
    port = free_port()
    scratch_dir = tempfile.TemporaryDirectory(prefix="runcomfy-load-")  # removed when main returns
    scratch = scratch_dir.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env |= {"RUNCOMFY_DATA_DIR": scratch, "RUNCOMFY_OUTPUT_DIR": scratch, "RUNCOMFY_SANDBOX_TIME_SCALE": "0.5"}
    command = [str(SCRIPT), "--transport", "http", "--port", str(port), "--sandbox", "--shared-token",
               "--log-level", "WARNING"]  # fmt: skip
    process = await anyio.open_process(command, env=env, stdout=None, stderr=None)
    url = f"http://127.0.0.1:{port}/mcp"
    image = sample_image()
    latencies: list[float] = []
    failures: list[str] = []
    try:
        await wait_until_up(url)
        per_session = calls // sessions

        async def session(index: int) -> None:
            async with Client(url) as client:
                first = await client.call_tool(
                    "seedance_1_0_lite_image_to_video", {"prompt": f"load {index}", "first_frame_image_url": image}
                )
                request_id = (first.structured_content or {}).get("request_id", "missing")

                async def one(n: int) -> None:
                    tool, args = [
                        ("get_status", {"request_id": request_id}),
                        ("list_jobs", {"limit": 5}),
                        ("get_result", {"request_id": request_id}),
                        (
                            "seedance_1_0_lite_image_to_video",
                            {"prompt": f"load {index}.{n}", "first_frame_image_url": image},
                        ),
                    ][n % 4]
                    started = time.perf_counter()
                    try:
                        result = await client.call_tool(tool, args)
                        if result.is_error:
                            failures.append(f"{tool}: {result.content[0]}")
                    except Exception as exc:  # a protocol or transport failure is what this script looks for
                        failures.append(f"{tool}: {type(exc).__name__}: {exc}")
                    latencies.append(time.perf_counter() - started)

                async with anyio.create_task_group() as tg:
                    for n in range(per_session):
                        tg.start_soon(one, n)

        started = time.perf_counter()
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for index in range(sessions):
                    tg.start_soon(session, index)
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        await process.wait()
    latencies.sort()
    quantile = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    print(f"load: {len(latencies)} tool calls in flight at once over streamable HTTP ({sessions} sessions)")
    print(f"  wall time        {elapsed:8.2f} s   ({len(latencies) / elapsed:.0f} calls/s)")
    print(f"  latency p50      {quantile[49] * 1000:8.1f} ms")
    print(f"  latency p95      {quantile[94] * 1000:8.1f} ms")
    print(f"  latency max      {latencies[-1] * 1000:8.1f} ms")
    print(f"  failed calls     {len(failures):8d}")
    for failure in failures[:5]:
        print(f"    {failure}")
    return 1 if failures or len(latencies) != per_session * sessions else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=20)
    options = parser.parse_args()
    raise SystemExit(anyio.run(main, options.calls, options.sessions))
