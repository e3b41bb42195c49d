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
PROMPT_2 = "Closer still: the sun touches the ridge and the haze turns gold."
PROMPT_3 = "The last light fades over the hills; the first stars appear."
MUSIC = "calm piano and soft strings, a slow sunset mood"
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
            # no preview: this walkthrough prints words, and the film's shots are seen in the film
            arguments = {"request_id": request_id, "timeout_s": 45, "download": True, "preview": False}
            waited = await self.call("wait_for_result", arguments, progress_callback=self.show_progress)
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
    env.setdefault("RUNCOMFY_SANDBOX_TIME_SCALE", "0.4")  # simulated jobs of ~4 s: three shots in well under a minute
    print("runcomfy-mcp demo: a three-shot film, the server in sandbox mode (simulated API, offline, free).\n")
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
            print(f"2. Shot 1: image-to-video job {job['request_id']} from the sample image {sample.name}.")
            print(f"   Estimated cost: {cost} (from the catalog's price and the 5 s asked for).")
            music = await demo.call("find_models", {"query": "music", "limit": 1})
            music_id = music["models"][0]["model_id"]
            track = await demo.call("run_model", {"model_id": music_id, "input": {"prompt": MUSIC, "duration": 15}})
            print(f"   Meanwhile, music from the catalog: {music_id} (job {track['request_id']}).\n")

            print("3. Waiting, with progress from the server's notifications:")
            shot = await demo.wait(job["request_id"])
            if shot["status"] != "succeeded" or not shot["local_files"]:
                print(f"The job ended as {shot['status']}: {shot.get('error')}", file=sys.stderr)
                return 1
            path = Path(shot["local_files"][0])
            seconds, width, height = _video_facts(path)
            print(f"   shot 1 is on disk: {path} ({seconds:.1f} s, {width}×{height})\n")

            print('4. Shot 2 from any model of the catalog, starting where shot 1 ended: "a Kling clip, continued"')
            found = await demo.call("find_models", {"query": "kling image to video", "limit": 3})
            for row in found["models"]:
                print(f"   - {row['model_id']} (${row['base_price_usd']:g}/{row['price_unit']})")
            model_id = found["models"][0]["model_id"]
            described = await demo.call("describe_model", {"model_id": model_id})
            required = ", ".join(described["input_schema"].get("required", []))
            print(f"   {model_id} needs: {required}; its image is shot 1's last frame:")
            last_frame = f"runcomfy://jobs/{shot['request_id']}/frames/last"
            print(f"   {last_frame}")
            inputs = {"prompt": PROMPT_2, "image_url": last_frame, "duration": "5"}
            second = await demo.wait(
                (await demo.call("run_model", {"model_id": model_id, "input": inputs}))["request_id"]
            )

            print("5. Shot 3 continues shot 2 the same way:")
            arguments = {
                "prompt": PROMPT_3,
                "first_frame_image_url": f"runcomfy://jobs/{second['request_id']}/frames/last",
            }
            third = await demo.wait((await demo.call("seedance_1_0_lite_image_to_video", arguments))["request_id"])
            sound = await demo.wait(track["request_id"])
            if any(j["status"] != "succeeded" for j in (second, third, sound)):
                print("A job did not succeed.", file=sys.stderr)
                return 1

            print("6. The three shots cut into one film, with crossfades and the music (made here, for nothing):")
            clips = [{"source": j["request_id"]} for j in (shot, second, third)]
            cut = {"clips": clips, "transition": "crossfade", "transition_s": 0.5, "name": "demo-film"}
            film = await demo.call("compose_video", cut | {"audio": {"source": sound["request_id"], "volume": 0.8}})
            for number, part in enumerate(film["shots"], 1):
                print(f"   shot {number}: {part['source']} from {part['at_s']:.1f} s, {part['duration_s']:.1f} s long")
            film_path = Path(film["local_files"][0])
            print("   The film is on disk:")
            print(f"   path:     {film_path}")
            print(f"   duration: {film['duration_s']:.1f} s ({film['width']}×{film['height']}, {film['fps']:g} fps)")
            print(f"   size:     {film['size_bytes'] / 1024:.0f} KB\n")

            account = await demo.call("get_account", {})
            spent = ", ".join(f"{m['model_id']} ${m['spent_usd']:.2f}" for m in account["by_model"])
            print(f"7. The (simulated) account: balance ${account['balance_usd']:.2f}; spent {spent}.\n")
    print("Tool calls made (what an assistant would do):")
    for number, call in enumerate(demo.calls, 1):
        print(f"   {number}. {call}")
    print(f"\nThe film: {film_path}")
    print("With a real token, drop --sandbox and the same calls run on RunComfy.")
    return 0
