"""`python -m runcomfy_mcp.sandbox`: the API simulator on its own, for benchmarks and manual tests.

Prints its base URL as the first line on stdout, then serves until stopped. Its jobs live in memory.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio

from runcomfy_mcp.sandbox.catalog import sandbox_catalog, synthetic_catalog
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import SimulatedJob, Simulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m runcomfy_mcp.sandbox")
    parser.add_argument(
        "--token", action="append", help="a token it accepts (repeat for several callers; default: any token)"
    )
    parser.add_argument("--time-scale", type=float, default=1.0, help="job durations × this (1: about 10 s a job)")
    parser.add_argument("--extra-models", type=int, default=0, help="add this many made-up models to the catalog")
    parser.add_argument("--video-mb", type=float, default=0, help="serve random output files of this size instead")
    parser.add_argument(
        "--unlimited-balance", action="store_true", help="jobs cost nothing, so thousands of them never run out"
    )
    args = parser.parse_args()
    blob = os.urandom(int(args.video_mb * 1024 * 1024)) if args.video_mb else b""

    def video(job: SimulatedJob) -> bytes:
        if blob:
            return blob
        from runcomfy_mcp.sandbox.video import video_for_job

        return video_for_job(job.arguments)

    simulator = Simulator(
        token=args.token,
        catalog=sandbox_catalog() + synthetic_catalog(args.extra_models),
        time_scale=args.time_scale,
        video_maker=video,
    )
    simulator.unlimited_balance = args.unlimited_balance

    async def serve() -> None:
        async with serve_on_loopback(simulator.app()) as url:
            simulator.base_url = url
            # This process is not an MCP server: its stdout only tells the parent where to connect.
            sys.stdout.write(url + "\n")
            sys.stdout.flush()
            await anyio.sleep_forever()

    anyio.run(serve)


if __name__ == "__main__":
    main()
