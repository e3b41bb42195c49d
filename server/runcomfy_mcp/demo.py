"""`runcomfy-mcp demo`: the whole flow against the sandbox, as an assistant would drive it, offline.

This is an MCP *client*: it starts the server in sandbox mode over stdio, so printing to stdout
here is the point (the server's own stdout stays the protocol channel).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

PROMPT = "The camera slowly pushes in over the hills as the sun sets; warm light, gentle haze."
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _short(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= 110 else text[:107] + "..."


class Walkthrough:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[str] = []
        self._tick = 0
        self._started = time.monotonic()

    async def call(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.calls.append(f"{name}({_short(arguments)})")
        result = await self.client.call_tool(name, arguments, **kwargs)
        text = "\n".join(c.text for c in result.content if c.type == "text")
        if result.is_error:
            raise RuntimeError(f"{name} failed:\n{text}")
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    async def wait(self, request_id: str) -> dict[str, Any]:
        while True:
            waited = await self.call(
                "wait_for_result",
                {"request_id": request_id, "timeout_s": 45, "download": True},
                progress_callback=self.show_progress,
            )
            if not waited["timed_out"]:
                print("\n")
                return waited

    async def show_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self._tick += 1
        spin = SPINNER[self._tick % len(SPINNER)]
        line = f"  {spin} {message or ''}  ({time.monotonic() - self._started:4.1f} s)"
        if sys.stdout.isatty():
            print(f"\r{line:<60}", end="", flush=True)
        else:
            print(line, flush=True)


def _video_facts(path: Path) -> tuple[float, int, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        seconds = float(container.duration or 0) / 1_000_000
        return seconds, stream.codec_context.width, stream.codec_context.height


async def run_demo(args: argparse.Namespace) -> int:
    env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_API_TOKEN"}
    env["RUNCOMFY_SANDBOX"] = "1"
    env.setdefault("RUNCOMFY_OUTPUT_DIR", str(Path.cwd() / "runcomfy-demo"))
    print("runcomfy-mcp demo: the server runs in sandbox mode (simulated API, offline, free).\n")
    with resources.as_file(resources.files("runcomfy_mcp.sandbox") / "sample.jpg") as sample:
        roots = [r for r in (env.get("RUNCOMFY_INPUT_ROOTS"), str(Path.home()), str(sample.parent)) if r]
        env["RUNCOMFY_INPUT_ROOTS"] = os.pathsep.join(roots)
        server = StdioServerParameters(command=sys.executable, args=["-m", "runcomfy_mcp", "--sandbox"], env=env)
        async with Client(server) as client:
            demo = Walkthrough(client)
            tools = (await client.list_tools()).tools
            demo.calls.append("tools/list")
            print(f"1. The server offers {len(tools)} tools: {', '.join(t.name for t in tools)}\n")

            arguments = {"prompt": PROMPT, "first_frame_image_url": str(sample), "duration": 5}
            job = await demo.call("seedance_1_0_lite_image_to_video", arguments)
            cost = f"${job['estimated_cost_usd']:.2f}" if job["estimated_cost_usd"] is not None else "unknown"
            print(f"2. Submitted image-to-video job {job['request_id']} with the sample image {sample.name}.")
            print(f"   Estimated cost: {cost} (from the catalog's price and the 5 s asked for).\n")

            print("3. Waiting, with progress from the server's notifications:")
            waited = await demo.wait(job["request_id"])
            if waited["status"] != "succeeded" or not waited["local_files"]:
                print(f"The job ended as {waited['status']}: {waited.get('error')}", file=sys.stderr)
                return 1
            path = Path(waited["local_files"][0])
            seconds, width, height = _video_facts(path)
            print("4. Done. The video is on disk:")
            print(f"   path:     {path}")
            print(f"   duration: {seconds:.1f} s ({width}×{height})")
            print(f"   size:     {path.stat().st_size / 1024:.0f} KB\n")

            print('5. Any model of the catalog: "a five-second Kling clip of this photo"')
            found = await demo.call("find_models", {"query": "kling image to video", "limit": 3})
            for row in found["models"]:
                print(f"   - {row['model_id']} (${row['base_price_usd']:g}/{row['price_unit']})")
            model_id = found["models"][0]["model_id"]
            described = await demo.call("describe_model", {"model_id": model_id})
            required = ", ".join(described["input_schema"].get("required", []))
            print(f"   {model_id} needs: {required}")
            inputs = {"prompt": PROMPT, "image_url": str(sample), "duration": "5"}
            clip_job = await demo.call("run_model", {"model_id": model_id, "input": inputs})
            clip = await demo.wait(clip_job["request_id"])
            if clip["status"] != "succeeded" or not clip["local_files"]:
                print(f"The catalog job ended as {clip['status']}: {clip.get('error')}", file=sys.stderr)
                return 1
            print(f"   saved: {clip['local_files'][0]} ({', '.join(o['kind'] for o in clip['outputs'])})\n")

            account = await demo.call("get_account", {})
            spent = ", ".join(f"{m['model_id']} ${m['spent_usd']:.2f}" for m in account["by_model"])
            print(f"6. The (simulated) account: balance ${account['balance_usd']:.2f}; spent {spent}.\n")
    print("Tool calls made (what an assistant would do):")
    for number, call in enumerate(demo.calls, 1):
        print(f"   {number}. {call}")
    print("\nWith a real token, drop --sandbox and the same calls run on RunComfy.")
    return 0
