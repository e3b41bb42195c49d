"""The measuring code of each benchmark section (run by run.py, each section in its own process).

Everything here talks only to loopback: a simulator of the API runs in a separate process
(`python -m runcomfy_mcp.sandbox`).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
from mcp.server import Server
from PIL import Image
from run import Row, row

from mcp import Client, StdioServerParameters
from runcomfy_mcp.core.jobs import PollSchedule
from runcomfy_mcp.core.sealing import new_key
from runcomfy_mcp.domain.media_rules import MIB
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.media.guarded_http import FetchSlots
from runcomfy_mcp.media.sources import MediaLoader, MediaPolicy
from runcomfy_mcp.runtime import Runtime, open_runtime
from runcomfy_mcp.sandbox.serving import wait_for_port
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.upstream.client import API_CONNECTION_LIMITS

HERE = Path(__file__).resolve().parent
TOKEN = "sandbox-token"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def image_uri(width: int = 640, height: int = 480) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@asynccontextmanager
async def simulator(*flags: str) -> AsyncIterator[str]:
    process = await anyio.open_process([sys.executable, "-m", "runcomfy_mcp.sandbox", "--token", TOKEN, *flags])
    assert process.stdout
    try:
        line = b""
        with anyio.fail_after(30):
            while b"\n" not in line:
                line += await process.stdout.receive()
        yield line.split(b"\n")[0].decode().strip()
    finally:
        process.terminate()
        await process.wait()


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=API_CONNECTION_LIMITS)  # as the server's own client
        self.counts: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.counts[request.url.path.rsplit("/", 1)[-1] if "/requests/" in request.url.path else "submit"] += 1
        return await self.inner.handle_async_request(request)


SCRATCH = tempfile.TemporaryDirectory(prefix="runcomfy-bench-")  # removed when the process ends


def settings_for(url: str, **extra: Any) -> Settings:
    scratch = tempfile.mkdtemp(dir=SCRATCH.name)
    return Settings(api_token=TOKEN, base_url=url, data_dir=Path(scratch), output_dir=Path(scratch) / "out", **extra)


# ------------------------------------------------------------------ sections


def section_startup(runs: int = 30) -> list[Row]:
    command = [sys.executable, str(HERE / "startup.py"), "--runs", str(runs)]
    done = subprocess.run(command, capture_output=True, text=True)
    line = done.stdout.strip()
    print(f"  {line}")
    ours = float(line.split("runcomfy-mcp ")[1].split(" ms")[0])
    ratio = float(line.split("ratio ")[1].split("×")[0])
    # Judged on the pairs' median ratio (see startup.py); the reference shown is what that ratio implies.
    return [row("start-up to tools/list (stdio)", ours, ours / ratio, "ms", ratio_max=1.15)]


def bare_status_server(url: str, http: httpx.AsyncClient, output_schema: dict[str, Any] | None) -> Server[Any]:
    """The reference for a status call: a bare low-level SDK server whose one tool makes the plain request get_status
    makes and answers in get_status's shape (its output schema, which the client checks too). What get_status
    takes beyond it is what this server adds: its checks, its API client, its tool layer."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        tool = types.Tool(name="status", input_schema={"type": "object"}, output_schema=output_schema)
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx: Any, params: Any) -> types.CallToolResult:
        body = (await http.get(f"{url}/v1/requests/{params.arguments['request_id']}/status")).json()
        view = {k: body.get(k) for k in ("request_id", "status", "queue_position")} | {"finished": False}
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(view))], structured_content=view)

    return Server("bare", on_list_tools=list_tools, on_call_tool=call_tool)


async def alternating_medians(calls: int, *sides: tuple[Client, str, dict[str, Any]]) -> list[float]:
    """Each side's median of `calls` calls in ms, the sides taking turns call by call (so a moment the machine
    is busy falls on both), the first sixth (warming up) left out."""
    times: list[list[float]] = [[] for _ in sides]
    for _ in range(calls):
        for (client, tool, arguments), kept in zip(sides, times, strict=True):
            started = time.perf_counter()
            await client.call_tool(tool, arguments)
            kept.append(time.perf_counter() - started)
    return [statistics.median(kept[calls // 6 :]) * 1000 for kept in times]


async def section_overhead(calls: int = 300) -> list[Row]:
    rows = []
    async with simulator() as url, httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for mode in ("auto", "legacy"):
            async with open_runtime(settings_for(url)) as runtime, Client(build_server(runtime.tools), mode=mode) as c:
                job = await c.call_tool(
                    "seedance_1_0_lite_image_to_video", {"prompt": "x", "first_frame_image_url": image_uri()}
                )
                asked = {"request_id": (job.structured_content or {})["request_id"]}
                schema = next(t.output_schema for t in (await c.list_tools()).tools if t.name == "get_status")
                async with Client(bare_status_server(url, http, schema), mode=mode) as bare:
                    ours, ref = await alternating_medians(calls, (c, "get_status", asked), (bare, "status", asked))
            label = f"get_status median, in-memory client ({mode}) vs a bare tool"
            rows.append(row(label, ours, ref, "ms", added_max=2.0))
        rows += await oauth_rows(url, calls // 2, sign_ins=max(1, calls // 30))
    return rows


@asynccontextmanager
async def http_server(url: str, oauth: bool) -> AsyncIterator[tuple[str, Runtime]]:
    """The HTTP app in this process, as `--transport http` builds it (with `--auth oauth` when `oauth`); its origin
    and its runtime."""
    from argparse import Namespace

    from runcomfy_mcp.cli import transport_security
    from runcomfy_mcp.hosting import http_app
    from runcomfy_mcp.http_server import guard_sessions, transport_options
    from runcomfy_mcp.mcp.callers import CallerIdentity
    from runcomfy_mcp.sandbox.serving import serve_on_loopback

    app: Any = None

    async def later(scope: Any, receive: Any, send: Any) -> None:  # the app needs its own URL first
        await app(scope, receive, send)

    async with serve_on_loopback(later) as base:
        extra = {"auth": "oauth", "oauth_key": new_key()} if oauth else {}
        settings = settings_for(url, **extra)
        async with open_runtime(settings, serving="http") as runtime:
            identity = CallerIdentity(http=True, oauth=oauth)
            server = build_server(runtime.tools, identity)
            security = transport_security(Namespace(host="127.0.0.1", allowed_host=[]), base)
            app = http_app(
                runtime, server, oauth_url=base if oauth else None, host="127.0.0.1",
                transport_security=security, stateless=False, limits=transport_options(settings, stateless=False),
            )  # fmt: skip
            guard_sessions(server, settings, identity, stateless=False)  # the shared port's gates, as served
            async with app.router.lifespan_context(app):
                yield base, runtime


async def sign_in(http: httpx.AsyncClient, base: str) -> str:
    """Register, authorize, answer the consent page, exchange the code: an access token."""
    import hashlib
    import re
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    redirect = "http://127.0.0.1:9/callback"
    body = {"client_name": "bench", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}
    client_id = (await http.post(f"{base}/register", json=body)).json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "code_challenge": challenge,
             "code_challenge_method": "S256", "state": "s", "resource": f"{base}/mcp"}  # fmt: skip
    page = await http.get((await http.get(f"{base}/authorize?{urlencode(query)}")).headers["location"])
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    answer = await http.post(
        f"{base}/consent", data={**fields, "runcomfy_token": TOKEN, "decision": "allow"}, headers={"Origin": base}
    )
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": redirect,
                "code_verifier": verifier}  # fmt: skip
    return str((await http.post(f"{base}/token", data=exchange)).json()["access_token"])


async def oauth_rows(url: str, calls: int, sign_ins: int) -> list[Row]:
    """What --auth oauth adds to a call (the token looked up in the history store, the RunComfy token unsealed),
    against the passthrough mode; and how long a sign-in takes (registration to token, the token checked).

    Both servers run at once and the calls alternate between them (which one goes first alternates too), so a
    machine that gets busier or quieter during the run weighs on both alike."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    warm_up = calls // 6
    took: dict[bool, list[float]] = {False: [], True: []}
    signing: list[float] = []
    async with (
        http_server(url, oauth=False) as (plain, _),
        http_server(url, oauth=True) as (oauth, oauth_runtime),
        httpx.AsyncClient() as http,
        AsyncExitStack() as clients,
    ):
        for _ in range(sign_ins):
            started = time.perf_counter()
            bearer = await sign_in(http, oauth)
            signing.append(time.perf_counter() - started)
        jobs: dict[bool, tuple[Client, str]] = {}
        for with_oauth, base, token in ((False, plain, TOKEN), (True, oauth, bearer)):
            client_http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            client = await clients.enter_async_context(
                Client(streamable_http_client(f"{base}/mcp", http_client=client_http))
            )
            job = await client.call_tool(
                "seedance_1_0_lite_image_to_video", {"prompt": "x", "first_frame_image_url": image_uri()}
            )
            jobs[with_oauth] = (client, (job.structured_content or {})["request_id"])
        for n in range(calls):
            for with_oauth in (False, True) if n % 2 else (True, False):
                client, request_id = jobs[with_oauth]
                started = time.perf_counter()
                await client.call_tool("get_status", {"request_id": request_id})
                took[with_oauth].append(time.perf_counter() - started)
        grants = oauth_runtime.services.grants()
        lookups: list[float] = []
        for _ in range(calls):  # what the bearer middleware does for each request, alone
            started = time.perf_counter()
            assert await grants.access(bearer) is not None
            lookups.append(time.perf_counter() - started)
    ours, ref = (statistics.median(took[m][warm_up:]) * 1000 for m in (True, False))
    sign_in_ms = statistics.median(signing) * 1000
    lookup_ms = statistics.median(lookups[warm_up:]) * 1000
    return [
        row("get_status median over HTTP, OAuth vs passthrough", ours, ref, "ms", added_max=2.0),
        row("OAuth token lookup alone, median", lookup_ms, None, "ms", absolute_max=1.0),
        row("OAuth sign-in (register to token), median", sign_in_ms, None, "ms", absolute_max=250.0),
    ]


async def simulator_requests(url: str) -> dict[str, Any]:
    """What the simulator in its own process was asked: requests by kind, and when its last job ends."""
    async with httpx.AsyncClient() as http:
        answer: dict[str, Any] = (await http.get(f"{url}/simulator/requests")).json()
    return answer


async def section_many_jobs(jobs: int = 1000, job_seconds: float = 50.0) -> list[Row]:
    """1,000 jobs of ~50 s each, submitted (16 at a time), then all waited on at once with the server in its own
    process over stdio (previews on, as users get them): its peak memory, its polls, how late the waits end.

    50 s rather than a full minute so the section itself stays near a minute: the schedule's
    tenth poll comes 50.8 s into a wait, so a 60 s job would be seen only at 60.8 s.
    """
    time_scale = job_seconds / (QUEUE_SECONDS + RUN_SECONDS)
    began = time.perf_counter()
    defaults = Settings()
    schedule = PollSchedule(initial_s=defaults.poll_initial_s, max_s=defaults.poll_max_s)  # the server's own
    implied = implied_polls(schedule, job_seconds)
    async with simulator("--time-scale", str(time_scale), "--unlimited-balance") as url:
        async with stdio_server(url) as (client, pid):
            uri = image_uri()
            submitting = anyio.CapacityLimiter(16)  # submits in flight at once: a busy assistant, not a flood
            request_ids: list[str] = []
            finished: list[bool] = []

            async def submit(n: int) -> None:
                async with submitting:
                    job = await client.call_tool(
                        "seedance_1_0_lite_image_to_video", {"prompt": f"{n}", "first_frame_image_url": uri}
                    )
                if job.is_error:
                    raise RuntimeError(f"submit {n + 1} of {jobs} failed: {job.content}")
                request_ids.append((job.structured_content or {})["request_id"])

            async def wait(request_id: str) -> None:
                done = await client.call_tool("wait_for_result", {"request_id": request_id, "timeout_s": 180})
                view = done.structured_content or {}
                finished.append(not done.is_error and view.get("status") == "succeeded")

            async with anyio.create_task_group() as group:
                for n in range(jobs):
                    group.start_soon(submit, n)
            submitted, cpu_before = time.perf_counter(), cpu_seconds(pid)
            async with anyio.create_task_group() as group:
                for request_id in request_ids:
                    group.start_soon(wait, request_id)
            waited, cpu_used = time.perf_counter() - submitted, cpu_seconds(pid) - cpu_before
            last_returned = time.time()  # the simulator's clock too (the wall clock, one machine)
            peak = memory_mb(pid)
        asked = await simulator_requests(url)
    lag = last_returned - asked["last_job_ends_at"]
    counts = asked["requests"]
    print(
        f"  many jobs: {jobs} submitted in {submitted - began:.1f} s (with start-up), then all waited on at once: "
        f"{sum(finished)}/{jobs} finished {waited:.1f} s later, the last {lag:.1f} s after the last job ended "
        f"(the server's last request to the API {asked['last_request_at'] - asked['last_job_ends_at']:.1f} s after); "
        "per job: "
        f"{counts.get('status', 0) / jobs:.2f} status, {counts.get('result', 0) / jobs:.2f} result, "
        f"{counts.get('file', 0) / jobs:.2f} file requests; the server's CPU while waiting: {cpu_used:.1f} s, "
        f"{cpu_used / waited:.0%} of one core; schedule {list_delays(schedule, 10)}"
    )
    if sum(finished) != jobs:  # a figure over jobs that never finished would measure nothing
        raise RuntimeError(f"only {sum(finished)} of {jobs} waits returned a finished job")
    return [
        row(f"server peak memory, {jobs} jobs waited on at once", peak, None, "MB", absolute_max=120),
        row(
            # ref: the schedule's polls and one result, for a job seen ended at /status (queued at the look before)
            # costs a result request too; a quick run's 3 s jobs meet that often
            f"status and result requests per job (~{job_seconds:.0f} s jobs)",
            polls(asked) / jobs,
            implied + 1,
            "",
            ratio_max=1.0,
            counted=True,
        ),
        row("last wait's answer after the last job ended", lag, None, "s", absolute_max=schedule.max_s),
    ]


def polls(asked: dict[str, Any]) -> int:
    """Status and result requests the simulator was asked in all (see simulator_requests)."""
    counts = asked["requests"]
    return int(counts.get("status", 0) + counts.get("result", 0))


def implied_polls(schedule: PollSchedule, job_seconds: float) -> int:
    """Status requests a wait makes on a job of `job_seconds`: one at once, then one per delay until it ends."""
    polls, elapsed = 1, 0.0
    for delay in schedule.delays():
        if elapsed >= job_seconds:
            return polls
        elapsed += delay
        polls += 1
    raise AssertionError("the poll schedule never ends")


def list_delays(schedule: PollSchedule, n: int) -> list[float]:
    return [round(delay, 2) for delay in itertools.islice(schedule.delays(), n)]


def child_pid(marker: str) -> int:
    """The pid of this process's child whose environment holds `marker` (a server started through a client)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environment = (entry / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and marker.encode() in environment:
            return int(entry.name)
    raise RuntimeError(f"no child process has {marker} in its environment")


def memory_mb(pid: int | str = "self", field: str = "VmHWM") -> float:
    """A process's peak (VmHWM) or current (VmRSS) resident memory, from Linux's /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def reset_peak_memory(pid: int | str = "self") -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


@asynccontextmanager
async def stdio_server(url: str, **env: str) -> AsyncIterator[tuple[Client, int]]:
    """`runcomfy-mcp` as an assistant runs it: its console script in its own process, over stdio; with its pid."""
    scratch = tempfile.mkdtemp(dir=SCRATCH.name)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    environment |= {"RUNCOMFY_API_TOKEN": TOKEN, "RUNCOMFY_BASE_URL": url, "RUNCOMFY_DATA_DIR": scratch}
    environment |= {"RUNCOMFY_OUTPUT_DIR": str(Path(scratch) / "out"), **env}
    script = str(Path(sys.executable).with_name("runcomfy-mcp"))
    async with Client(StdioServerParameters(command=script, env=environment)) as client:
        yield client, child_pid(scratch)


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU time a process has used, all its threads, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Downloads:
    ours: list[float] = field(default_factory=list)  # seconds each
    plain: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)  # the server process's CPU seconds each
    plain_cpu: list[float] = field(default_factory=list)
    growth_mb: float = 0.0  # the server's largest peak-memory growth during one


async def timed_downloads(
    client: Client, pid: int | str, rounds: int, plain: Callable[[str], Awaitable[float]]
) -> Downloads:
    """`rounds` downloads through the server and as many plain ones, alternating who goes first, the disk
    synced before each."""
    uri = image_uri()
    figures = Downloads()
    for n in range(rounds):
        job = await client.call_tool(
            "seedance_1_0_lite_image_to_video", {"prompt": f"{n}", "first_frame_image_url": uri}
        )
        request_id = (job.structured_content or {})["request_id"]
        asked = {"request_id": request_id, "preview": False}  # the preview's cost is the preview section's
        result = await client.call_tool("get_result", asked)
        while (result.structured_content or {}).get("status") != "succeeded":
            await anyio.sleep(0.05)
            result = await client.call_tool("get_result", asked)
        video_url = (result.structured_content or {})["video_urls"][0]

        async def download() -> None:
            os.sync()  # neither side pays for the other's dirty pages
            before, cpu = memory_mb(pid, "VmRSS"), cpu_seconds(pid)
            reset_peak_memory(pid)
            started = time.perf_counter()
            saved = await client.call_tool("get_result", asked | {"download": True})  # noqa: B023
            figures.ours.append(time.perf_counter() - started)
            figures.ours_cpu.append(cpu_seconds(pid) - cpu)
            figures.growth_mb = max(figures.growth_mb, memory_mb(pid) - before)
            if saved.is_error:
                raise RuntimeError(f"the download failed: {saved.content}")
            for path in (saved.structured_content or {})["local_files"]:
                Path(path).unlink()

        async def reference_download() -> None:
            os.sync()
            cpu = cpu_seconds()
            figures.plain.append(await plain(video_url))  # noqa: B023
            figures.plain_cpu.append(cpu_seconds() - cpu)

        first, second = (download, reference_download) if n % 2 == 0 else (reference_download, download)
        await first()
        await second()
    return figures


async def section_download(size_mb: int = 200, rounds: int = 3) -> list[Row]:
    """get_result(download=true) of a large output against a plain httpx stream to disk of the same file:
    with the server in this process (an in-memory client), then as users run it (its own process, over
    stdio). Alternating, synced before each, best of `rounds` each."""
    scratch = Path(tempfile.mkdtemp(dir=SCRATCH.name))

    async def plain(url: str) -> float:
        started = time.perf_counter()
        async with httpx.AsyncClient() as http, http.stream("GET", url) as response:
            with open(scratch / "plain.mp4", "wb") as out:  # the simplest reference: plain blocking writes
                async for chunk in response.aiter_raw():
                    out.write(chunk)
        elapsed = time.perf_counter() - started
        (scratch / "plain.mp4").unlink()
        return elapsed

    figures: dict[str, Downloads] = {}
    async with simulator("--time-scale", "0.001", "--video-mb", str(size_mb)) as url:
        settings = settings_for(url)
        async with open_runtime(settings) as runtime, Client(build_server(runtime.tools)) as client:
            figures["in-process"] = await timed_downloads(client, "self", rounds, plain)
        async with stdio_server(url) as (client, pid):
            figures["own process, stdio"] = await timed_downloads(client, pid, rounds, plain)
    rows = []
    for where, measured in figures.items():
        target = 0.9 if where == "in-process" else 0.95
        print(
            f"  download, {where}: ours {[round(size_mb / t) for t in measured.ours]} MB/s, "
            f"plain {[round(size_mb / t) for t in measured.plain]} MB/s"
        )
        if where != "in-process":  # in one process the CPU time cannot be told apart
            print(
                f"  CPU seconds per download: server {[round(t, 2) for t in measured.ours_cpu]}, "
                f"plain {[round(t, 2) for t in measured.plain_cpu]}"
            )
        rows += [
            row(
                f"{size_mb} MB download, {where} (best of {rounds})",
                size_mb / min(measured.ours),
                size_mb / min(measured.plain),
                "MB/s",
                ratio_min=target,
            ),
            row(
                f"{size_mb} MB download, {where}: server memory growth", measured.growth_mb, None, "MB", absolute_max=32
            ),
        ]
    return rows


async def bytes_read_by_probe(data: bytes) -> int:
    """How many bytes of `data` the probe pulls from a public URL serving it."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for start in range(0, len(data), 64 * 1024):
            sent += 64 * 1024
            yield data[start : start + 64 * 1024]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(len(data))}, content=body())

    async def public(host: str) -> list[str]:
        return ["93.184.216.34"]

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        loader = MediaLoader(http, MediaPolicy(), public, deadline_s=60, slots=FetchSlots(per_caller=1, total=1))
        facts = (await loader.load("https://cdn.example/x", max_bytes=50 * MIB)).facts
    assert facts.size_bytes == len(data)
    return sent


async def section_probe() -> list[Row]:
    rows = []
    for fmt in ("JPEG", "PNG"):
        buffer = io.BytesIO()
        Image.new("RGB", (4000, 3000), (10, 20, 30)).save(buffer, fmt)
        data = buffer.getvalue() + b"\0" * (30 * MIB - len(buffer.getvalue()))
        sent = await bytes_read_by_probe(data)
        rows.append(
            row(
                f"bytes read to check a 30 MB {fmt} by URL",
                sent / 1024,
                len(data) / 1024,
                "KB",
                absolute_max=256,
                counted=True,
            )
        )
    return rows


async def section_catalog(models: int = 1000, searches: int = 200) -> list[Row]:
    """The catalog: a cold fetch (pages, seconds), a warm start (requests: none), searches, tools/list size."""
    queries = ["kling image to video", "text to image", "wan 2.2", "lip sync", "veo m42", "cheap video to video"]
    async with simulator("--extra-models", str(models)) as url:
        settings = settings_for(url)
        async with open_runtime(settings) as runtime:
            catalog = runtime.tools.services.catalog()
            started = time.perf_counter()
            listing = await catalog.listing()
            cold_s = time.perf_counter() - started
            cold_pages = catalog.pages_fetched
            assert len(listing.entries) >= models, len(listing.entries)
            times = []
            for i in range(searches):
                started = time.perf_counter()
                await catalog.find(queries[i % len(queries)], limit=10)
                times.append((time.perf_counter() - started) * 1000)
            async with Client(build_server(runtime.tools)) as client:
                listed = await client.list_tools()
                list_bytes = len(listed.model_dump_json(by_alias=True, exclude_none=True))
                calls = []
                for i in range(searches // 4):
                    started = time.perf_counter()
                    await client.call_tool("find_models", {"query": queries[i % len(queries)]})
                    calls.append((time.perf_counter() - started) * 1000)
        async with open_runtime(settings) as runtime:  # a restart within the TTL
            catalog = runtime.tools.services.catalog()
            await catalog.find("kling")
            warm_pages = catalog.pages_fetched
    total = len(listing.entries)
    print(f"catalog: {total} models; cold fetch {cold_pages} request(s) in {cold_s:.2f} s; warm start {warm_pages}")
    return [
        row(
            f"cold catalog fetch of {total} models: requests",
            cold_pages,
            None,
            "",
            absolute_max=total // 500 + 2,
            counted=True,
        ),
        row(f"cold catalog fetch of {total} models: seconds", cold_s, None, "s", absolute_max=10),
        row("warm start: catalog requests", warm_pages, None, "", absolute_max=1, counted=True),
        row(f"find_models median, {total} models (core)", statistics.median(times), None, "ms", absolute_max=5),
        row(f"find_models median, {total} models (MCP call)", statistics.median(calls), None, "ms", absolute_max=50),
        row(
            f"tools/list bytes ({len(listed.tools)} tools)", list_bytes, None, "B", absolute_max=18 * 1024, counted=True
        ),
    ]


@asynccontextmanager
async def replicas(api: str, database_url: str, count: int) -> AsyncIterator[list[str]]:
    """`count` stateless `runcomfy-mcp --transport http` processes on one PostgreSQL history; their /mcp URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env |= {"RUNCOMFY_BASE_URL": api, "RUNCOMFY_DATABASE_URL": database_url}
    processes, urls = [], []
    try:
        for _ in range(count):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            scratch = tempfile.mkdtemp(dir=SCRATCH.name)
            command = ["runcomfy-mcp", "--transport", "http", "--port", str(port), "--log-level", "WARNING"]
            command[0] = str(Path(sys.executable).with_name("runcomfy-mcp"))
            processes.append(
                await anyio.open_process(command, env=env | {"RUNCOMFY_DATA_DIR": scratch}, stdout=None, stderr=None)
            )
            urls.append(f"http://127.0.0.1:{port}/mcp")
            await wait_for_port(port, timeout_s=30)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            await process.wait()


async def load(urls: list[str], tokens: list[str], calls: int) -> tuple[list[float], int, float]:
    """`calls` tool calls in flight at once from len(tokens) callers, spread round-robin over `urls`."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from runcomfy_mcp.sandbox.balancer import RoundRobin

    image = image_uri()
    latencies: list[float] = []
    failures = 0

    async def caller(token: str) -> None:
        nonlocal failures
        # Latency is what this measures: a slow answer (a replica's first call builds its core) is no failure.
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, transport=RoundRobin(*urls), timeout=httpx2.Timeout(120)
        )
        async with Client(streamable_http_client(urls[0], http_client=http)) as client:
            first = await client.call_tool(
                "seedance_1_0_lite_image_to_video", {"prompt": "x", "first_frame_image_url": image}
            )
            request_id = (first.structured_content or {}).get("request_id", "missing")

            async def one(n: int) -> None:
                nonlocal failures
                tool, args = [
                    ("get_status", {"request_id": request_id}),
                    ("list_jobs", {"limit": 5}),
                    ("get_result", {"request_id": request_id}),
                    ("seedance_1_0_lite_image_to_video", {"prompt": f"{n}", "first_frame_image_url": image}),
                ][n % 4]
                started = time.perf_counter()
                try:
                    failures += (await client.call_tool(tool, args)).is_error
                except Exception:  # a protocol or transport failure is what this measures
                    failures += 1
                latencies.append(time.perf_counter() - started)

            async with anyio.create_task_group() as group:
                for n in range(calls // len(tokens)):
                    group.start_soon(one, n)

    started = time.perf_counter()
    with anyio.fail_after(300):
        async with anyio.create_task_group() as group:
            for token in tokens:
                group.start_soon(caller, token)
    return sorted(latencies), failures, time.perf_counter() - started


async def polls_per_job(api: str, urls: list[str], token: str, jobs: int) -> tuple[float, float]:
    """Polls per job of ~9 s (status and result requests, less the one result each wait returns: a wait asks
    /result while its job is generated, so its polls are of both kinds): with one waiter (on the first replica),
    then with a waiter on each of `urls` (the same job waited on through every replica at once). Each time `jobs`
    jobs, all waited on at once."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    image = image_uri()
    figures = []
    async with AsyncExitStack() as stack:
        clients = []
        for url in urls:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(120))
            clients.append(await stack.enter_async_context(Client(streamable_http_client(url, http_client=http))))
            await clients[-1].call_tool("list_jobs", {})  # each replica set up before the waits start together
        for waiters in (clients[:1], clients):
            before = polls(await simulator_requests(api))
            ids = []
            for n in range(jobs):
                job = await clients[0].call_tool(
                    "seedance_1_0_lite_image_to_video", {"prompt": f"{n}", "first_frame_image_url": image}
                )
                ids.append((job.structured_content or {})["request_id"])
            finished: list[bool] = []

            async def wait(waiter: Client, request_id: str, finished: list[bool]) -> None:
                asked = {"request_id": request_id, "timeout_s": 60, "preview": False}
                done = await waiter.call_tool("wait_for_result", asked)
                finished.append((done.structured_content or {}).get("status") == "succeeded")

            async with anyio.create_task_group() as group:
                for request_id in ids:
                    for waiter in waiters:
                        group.start_soon(wait, waiter, request_id, finished)
            if not all(finished):
                raise RuntimeError(f"only {sum(finished)} of {len(finished)} waits returned a finished job")
            figures.append((polls(await simulator_requests(api)) - before - len(finished)) / jobs)
    return figures[0], figures[1]


async def section_replicas(calls: int = 200, callers: int = 20, rounds: int = 200, polled_jobs: int = 20) -> list[Row]:
    """PostgreSQL's cost per call against SQLite, two replicas against one under concurrent load, and how often
    RunComfy is polled when a job is waited on through both replicas at once against through one."""
    from runcomfy_mcp.sandbox.postgres import fresh_database, postgres_server

    tokens = [f"caller-{i:02d}-token" for i in range(callers)]
    rows: list[Row] = []
    with postgres_server() as pg:
        async with simulator(*[flag for t in tokens for flag in ("--token", t)]) as api:
            # Both histories open at once and their calls alternating, so a busy moment falls on both.
            async with AsyncExitStack() as stack:
                clients: dict[str, tuple[Client, str]] = {}
                for backend in ("sqlite", "postgres"):
                    extra = {"database_url": fresh_database(pg)} if backend == "postgres" else {}
                    runtime = await stack.enter_async_context(open_runtime(settings_for(api, **extra)))
                    c = await stack.enter_async_context(Client(build_server(runtime.tools)))
                    job = await c.call_tool(
                        "seedance_1_0_lite_image_to_video", {"prompt": "x", "first_frame_image_url": image_uri()}
                    )
                    for n in range(5):  # a short history to list
                        await c.call_tool(
                            "seedance_1_0_lite_image_to_video", {"prompt": f"{n}", "first_frame_image_url": image_uri()}
                        )
                    clients[backend] = (c, (job.structured_content or {})["request_id"])
                timings = {b: {"get_status": [], "list_jobs": []} for b in clients}
                for _ in range(rounds):
                    for backend, (c, request_id) in clients.items():
                        for tool, args in (("get_status", {"request_id": request_id}), ("list_jobs", {"limit": 20})):
                            started = time.perf_counter()
                            await c.call_tool(tool, args)
                            timings[backend][tool].append(time.perf_counter() - started)
            medians = {
                b: {t: statistics.median(v[rounds // 5 :]) * 1000 for t, v in ts.items()} for b, ts in timings.items()
            }
            for tool in ("get_status", "list_jobs"):
                rows.append(
                    row(
                        f"{tool} median, PostgreSQL vs SQLite",
                        medians["postgres"][tool],
                        medians["sqlite"][tool],
                        "ms",
                        added_max=5.0,
                    )
                )
            figures = {}
            for count in (1, 2):
                async with replicas(api, fresh_database(pg), count) as urls:
                    figures[count] = await load(urls, tokens, calls)
            async with replicas(api, fresh_database(pg), 2) as urls:
                one_waiter, two_waiters = await polls_per_job(api, urls, tokens[0], polled_jobs)
    print(
        f"polls per ~9 s job: {one_waiter:.2f} with one waiter, {two_waiters:.2f} with a waiter on each "
        f"of 2 replicas ({polled_jobs} jobs each)"
    )
    rows.append(
        row(
            "polls per job, a waiter on each of 2 replicas vs one",
            two_waiters,
            one_waiter,
            "",
            ratio_max=1.1,  # a count, but a few jobs' one extra poll at a boundary is noise: judged at full size
        )
    )
    for count, (latencies, failures, elapsed) in figures.items():
        q = statistics.quantiles(latencies, n=100)
        rate = len(latencies) / elapsed
        print(
            f"{count} replica(s): {len(latencies)} calls from {callers} callers, {failures} failed, "
            f"p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, {rate:.0f} calls/s"
        )
    two, one = figures[2], figures[1]
    q2 = statistics.quantiles(two[0], n=100)
    rows += [
        row(
            f"{calls} calls, {callers} callers, 2 replicas: failed calls",
            two[1],
            None,
            "",
            absolute_max=1,
            counted=True,
        ),
        row(f"{calls} calls, 2 replicas: p50 latency", q2[49] * 1000, None, "ms", absolute_max=5000),
        row(f"{calls} calls, 2 replicas: p95 latency", q2[94] * 1000, None, "ms", absolute_max=10000),
        row(
            f"{calls} calls: throughput, 2 replicas vs 1",
            len(two[0]) / two[2],
            len(one[0]) / one[2],
            "/s",
            ratio_min=0.8,
        ),
    ]
    return rows


def write_clip(path: Path, seconds: float, width: int, height: int, *, fps: int = 24, keyint: int = 250) -> Path:
    """An H.264 clip with a moving sun over a changing sky (x264's default GOP unless `keyint`)."""
    import av
    from PIL import ImageDraw

    frames = int(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"x264-params": f"keyint={keyint}:min-keyint={min(keyint, 25)}:scenecut=0"}
        for i in range(frames):
            picture = Image.new("RGB", (width, height), ((i * 3) % 255, 80, 160))
            x = i * width // frames
            ImageDraw.Draw(picture).ellipse((x, height // 3, x + height // 4, height // 3 + height // 4), fill="yellow")
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def probe_preview(kind: str, path: Path, rounds: int) -> dict[str, Any]:
    """The file's preview made `rounds` times in a fresh process, as the server makes it (in its worker)."""
    done = subprocess.run(
        [sys.executable, str(HERE / "preview_probe.py"), kind, str(path), str(rounds)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def section_preview(
    seconds: float = 10.0,
    width: int = 1920,
    height: int = 1080,
    keyframe_s: float = 30.0,
    huge: int = 8192,
    rounds: int = 3,
) -> list[Row]:
    """Previews of a real clip and of two hostile ones: time, the worker's peak memory, the server's growth.

    The hostile files are the security review's: a MOV of 8192×8192 frames (refused from its header) and
    a clip with a single keyframe (reached by decoding forward once, never once per frame shown).
    """
    sys.path.insert(0, str(HERE.parent / "tests"))
    from hostile_media import write_video
    from runcomfy_mcp.media.thumbnails import MAX_JPEG_BYTES

    folder = Path(tempfile.mkdtemp(dir=SCRATCH.name))
    clip = write_clip(folder / "clip.mp4", seconds, width, height)
    one_keyframe = write_clip(folder / "one-keyframe.mp4", keyframe_s, width, height, keyint=int(keyframe_s * 24) + 1)
    huge_frames = write_video(folder / "huge.mov", huge, huge, frames=1, fps=2)  # refused from its header
    rows: list[Row] = []
    cases = [
        (f"{seconds:g} s {height}p clip", clip, 5000),
        (f"{keyframe_s:g} s {height}p clip, one keyframe", one_keyframe, 5000),
        (f"{huge}×{huge} MOV ({huge_frames.stat().st_size // 1024} KB)", huge_frames, 2000),
    ]
    server_growth = 0.0
    for label, path, time_max in cases:
        figures = probe_preview("video", path, rounds)
        print(f"preview of a {label}: {figures['outcome']}")
        server_growth = max(server_growth, figures["server_growth_mb"])
        rows.append(row(f"preview of a {label}: time (best of {rounds})", min(figures["times_ms"]), None, "ms",
                        absolute_max=time_max))  # fmt: skip
        rows.append(row(f"preview of a {label}: worker CPU time", figures["cpu_ms"], None, "ms",
                        absolute_max=time_max))  # fmt: skip
        rows.append(row(f"preview of a {label}: worker peak memory", figures["worker_peak_mb"], None, "MB",
                        absolute_max=256))  # fmt: skip
        if path is clip:
            rows.append(row(f"preview of a {label}: size", figures["jpeg_kb"], None, "KB",
                            absolute_max=MAX_JPEG_BYTES / 1024))  # fmt: skip
    rows.append(row("previews: the server's own memory growth", server_growth, None, "MB", absolute_max=16))
    return rows


def photo_clip(path: Path, seconds: float, width: int, height: int, keyint: int = 250, drift: float = 0.0) -> Path:
    """A moving H.264 clip like a model's: the sample photo, pushed in on and panned, 24 fps, x264's own GOP
    (250 frames, no keyframe but the first in a 10 s clip) unless `keyint` says otherwise."""
    from importlib import resources

    import av

    photo = Image.open(resources.files("runcomfy_mcp.sandbox") / "sample.jpg").convert("RGB")
    photo = photo.resize((round(width * 1.25), round(height * 1.25)))
    frames = round(seconds * 24)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "x264-params": f"keyint={keyint}:scenecut=0"}
        for i in range(frames):
            zoom = 1 + 0.2 * i / frames
            w, h = photo.width / 1.25 / zoom, photo.height / 1.25 / zoom
            left = (photo.width - w) / 2 + drift * (i / frames - 0.5) * width / 10
            top = (photo.height - h) / 2
            box = (max(0.0, left), top, min(float(photo.width), left + w), top + h)
            picture = photo.resize((width, height), Image.Resampling.BILINEAR, box=box)
            container.mux(stream.encode(av.VideoFrame.from_image(picture)))  # type: ignore[no-untyped-call]
        container.mux(stream.encode(None))
    return path


def clips_in_parallel(jobs: list[tuple[Path, float, int, int, int, float]]) -> list[Path]:
    """Made in two child processes: quicker, and their memory is not this section's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(photo_clip, *zip(*jobs, strict=True)))


async def section_film(clips: int = 6, seconds: float = 5.0, width: int = 1280, height: int = 720) -> list[Row]:
    """compose_video's work on its own: H.264 clips crossfaded under a music track, into one MP4."""
    from runcomfy_mcp.media.film import Clip, FilmPlan, Soundtrack, compose
    from runcomfy_mcp.sandbox.music import make_music

    folder = Path(tempfile.mkdtemp(dir=SCRATCH.name))
    paths = clips_in_parallel([(folder / f"shot-{i}.mp4", seconds, width, height, 250, i - 2.5) for i in range(clips)])
    music = folder / "music.wav"
    music.write_bytes(make_music(clips * seconds))
    plan = FilmPlan(tuple(Clip(p, p.name) for p in paths), "crossfade", 0.5, soundtrack=Soundtrack(music, "music"))
    reset_peak_memory()
    before = memory_mb(field="VmRSS")
    started, cpu = time.perf_counter(), cpu_seconds()
    film = await anyio.to_thread.run_sync(compose, plan, folder / "film.mp4")
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    growth = memory_mb() - before
    label = f"{clips} × {seconds:g} s {height}p clips, crossfades, music"
    size_mb = film.size_bytes / MIB
    # CPU time too: a busy machine stretches the wall time, not the work (the encoder's threads are counted).
    print(f"film: {film.duration_s:.1f} s at {film.width}×{film.height}, {size_mb:.1f} MB, made in {elapsed:.1f} s "
          f"({cpu:.1f} s of CPU)")  # fmt: skip
    return [
        row(f"compose {label}: seconds (ref: film length)", elapsed, film.duration_s, "s", absolute_max=15),
        row(f"compose {label}: peak memory growth", growth, None, "MB", absolute_max=200),
    ]


async def section_frame(seconds: float = 10.0, width: int = 1920, height: int = 1080) -> list[Row]:
    """The last frame of a clip (a continued shot's first frame): seek to the last keyframe, decode forward."""
    from runcomfy_mcp.media.frames import take_frame

    folder = Path(tempfile.mkdtemp(dir=SCRATCH.name))
    every_2s, one_keyframe = clips_in_parallel(
        [
            (folder / "gop-2s.mp4", seconds, width, height, 48, 0.0),
            (folder / "gop-all.mp4", seconds, width, height, 250, 0.0),
        ]
    )
    label = f"{seconds:g} s {height}p clip"
    rows = []
    for path, how, goal in ((every_2s, "a keyframe every 2 s", 0.5), (one_keyframe, "one keyframe, at the start", 1.0)):
        timings, cpus = [], []
        for _ in range(3):
            started, cpu = time.perf_counter(), cpu_seconds()
            frame = await anyio.to_thread.run_sync(take_frame, path, "last")
            timings.append(time.perf_counter() - started)
            cpus.append(cpu_seconds() - cpu)
        assert frame.width == width and frame.at_s > seconds - 0.1
        print(f"last frame of a {label} ({how}): {min(timings):.2f} s, {min(cpus):.2f} s of CPU (best of 3)")
        rows.append(row(f"last frame of a {label} ({how})", min(timings), None, "s", absolute_max=goal))
    return rows
