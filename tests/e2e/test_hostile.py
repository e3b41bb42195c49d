"""Attacks on a shared server: hostile tokens, hostile image hosts, hostile upstream URLs, racing files.

Each test is one attack from the security review; it must fail for the attacker and change nothing
for anyone else.
"""

from __future__ import annotations

import base64
import gc
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client

from conftest import TOKEN
from helpers import structured, text_of
from http_servers import SCRIPT, http_client, http_server
from images import make_image
from internet import HOSTILE_HOST, HOSTILE_IP, INTERNAL_HOST, FakeInternet, HostileHost, resolver_for
from mcp import Client
from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.media.guarded_http import is_public_address
from runcomfy_mcp.runtime import Runtime, Serving, open_runtime
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"
DREAMINA = "dreamina_3_0_image_to_video"
PNG_URI = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()


async def no_progress(progress: float, message: str) -> None:
    return None


@asynccontextmanager
async def server(
    settings: Settings, *, serving: Serving = "http", **seams: Any
) -> AsyncIterator[tuple[Runtime, Client]]:
    """A server on the real guarded network stack (no mock media transport) and an in-memory client."""
    async with open_runtime(settings, serving=serving, **seams) as runtime, Client(build_server(runtime.tools)) as c:
        yield runtime, c


class Internet:
    def __init__(self, network: FakeInternet, hostile: HostileHost, internal: HostileHost) -> None:
        self.network = network
        self.hostile = hostile
        self.internal = internal
        self.resolver = resolver_for({HOSTILE_HOST: [HOSTILE_IP], INTERNAL_HOST: ["127.0.0.1"]})

    def seams(self) -> dict[str, Any]:
        return {"network": self.network, "resolver": self.resolver}


@pytest.fixture
async def internet() -> AsyncIterator[Internet]:
    hostile, internal, network = HostileHost(), HostileHost(), FakeInternet()
    async with serve_on_loopback(hostile.app()) as hostile_url, serve_on_loopback(internal.app()) as internal_url:
        network.routes[HOSTILE_IP] = int(hostile_url.rsplit(":", 1)[1])
        network.routes["127.0.0.1"] = int(internal_url.rsplit(":", 1)[1])  # what a leak would reach
        yield Internet(network, hostile, internal)


def caller(name: str) -> Caller:
    token = f"rc-{name}-0000"
    return Caller.with_token(token)


# ------------------------------------------------------------------ 1. tokens


async def test_a_token_that_breaks_json_breaks_nothing_for_others(api_url: str, simulator: Simulator) -> None:
    async with http_server(api_url, token=None) as url:
        async with http_client(url, '"') as mallory:
            result = await mallory.call_tool("get_status", {"request_id": "sim-000001-0000"})
            assert result.is_error and "internal error" not in text_of(result)
        async with http_client(url, TOKEN) as alice:
            job = await alice.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": PNG_URI})
            assert not job.is_error, text_of(job)
            status = await alice.call_tool("get_status", {"request_id": structured(job)["request_id"]})
            assert not status.is_error and structured(status)["status"] == "in_queue"


async def test_a_token_that_is_part_of_others_ids_only_touches_its_own_results(
    api_url: str, simulator: Simulator
) -> None:
    async with http_server(api_url, token=None) as url:
        async with http_client(url, "sim-") as mallory:
            await mallory.call_tool("list_jobs", {})
        async with http_client(url, TOKEN) as alice:
            job = await alice.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": PNG_URI})
            request_id = structured(job)["request_id"]
            assert request_id in simulator.jobs and request_id in text_of(job)
            status = await alice.call_tool("get_status", {"request_id": request_id})
            assert not status.is_error and structured(status)["request_id"] == request_id


@pytest.mark.parametrize("header", [b"Bearer t\xf6k\xe9n", b"Bearer " + b"x" * 4097])
async def test_a_token_that_cannot_be_sent_gets_a_clear_error(api_url: str, header: bytes) -> None:
    async with http_server(api_url, token=None) as url:
        http = httpx2.AsyncClient(headers={"Authorization": header})
        async with Client(streamable_http_client(url, http_client=http)) as mallory:
            result = await mallory.call_tool("get_status", {"request_id": "sim-1"})
    assert result.is_error and "cannot be used" in text_of(result) and "internal error" not in text_of(result)


async def test_a_long_token_with_punctuation_is_a_token(api_url: str, simulator: Simulator) -> None:
    """RunComfy's own server takes 32 to 4,096 printable characters: so does this one."""
    token = ("rc_" + "".join(chr(c) for c in range(0x21, 0x7F)) * 50)[:4096]
    simulator.tokens.add(token)
    async with http_server(api_url, token=None) as url, http_client(url, token) as caller:
        job = await caller.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": PNG_URI})
    assert not job.is_error, text_of(job)
    assert len(simulator.calls.submits) == 1


async def test_a_bad_server_token_is_a_clear_error(api_url: str, simulator: Simulator) -> None:
    async with server(Settings(api_token="t\u00f6ken", base_url=api_url), serving="stdio") as (_, client):
        result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": PNG_URI})
    assert result.is_error and "RUNCOMFY_API_TOKEN cannot be used" in text_of(result)
    assert simulator.calls.count("POST") == 0


async def test_many_distinct_tokens_leave_nothing_behind(api_url: str) -> None:
    async with server(Settings(base_url=api_url)) as (runtime, _):
        await runtime.tools.call("list_jobs", {}, no_progress, caller("first"))  # build the core first
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):  # each token made here, so anything that keeps one shows up as growth
            await runtime.tools.call("list_jobs", {}, no_progress, caller(f"{i:05d}-" + "k" * 4000))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    assert kept < 1024 * 1024, f"{kept} bytes kept after 2000 callers with 4 KB tokens"


async def test_a_callers_token_echoed_upstream_is_redacted_for_that_caller(api_url: str) -> None:
    # The simulator echoes nothing, so an unknown request id stands in: its message names the caller's id.
    who = caller("echo")
    async with server(Settings(base_url=api_url)) as (runtime, _):
        result = await runtime.tools.call("get_status", {"request_id": who.token}, no_progress, who)
    assert who.token is not None and who.token not in str(result.model_dump())


# ------------------------------------------------------------------ 2. DNS rebinding


async def test_dns_rebinding_never_reaches_the_internal_address(api_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    accepted: list[object] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)
            conn.close()

    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def rebinding_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != "rebind.example":
            return real_getaddrinfo(host, *args, **kwargs)
        asked.append(name)
        address = "93.184.216.34" if len(asked) == 1 else "127.0.0.1"  # public when checked, then internal
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        settings = Settings(api_token=TOKEN, base_url=api_url, connect_timeout_s=1)
        async with server(settings) as (_, client):
            url = f"https://rebind.example:{port}/secret.png"
            result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": url})
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert result.is_error and "first_frame_image_url" in text_of(result)
    assert "private" in text_of(result)
    assert accepted == [], "a connection reached the internal address"


async def test_each_connection_goes_to_the_checked_address_with_the_hosts_name(internet: Internet) -> None:
    async with server(Settings(api_token=TOKEN, base_url="https://api.example"), **internet.seams()) as (rt, _):
        service = rt.tools.services.jobs()
        loaded = await service.inputs.loader.load(f"https://{HOSTILE_HOST}/ok.png", max_bytes=10**7)
    assert (loaded.facts.width, loaded.facts.height) == (640, 480)
    assert internet.network.connected == [HOSTILE_IP]  # the socket went to the address that was checked
    assert internet.network.server_names == [HOSTILE_HOST]  # TLS still names the host (SNI, certificate)
    assert internet.hostile.hosts_seen == [HOSTILE_HOST]  # and so does the Host header


async def test_a_redirect_to_an_internal_name_is_refused(internet: Internet, api_url: str) -> None:
    async with server(Settings(api_token=TOKEN, base_url=api_url), **internet.seams()) as (_, client):
        url = f"https://{HOSTILE_HOST}/to-internal.png"
        result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": url})
    assert result.is_error and "redirects to a private address" in text_of(result)
    assert internet.internal.requests == [] and "127.0.0.1" not in internet.network.connected


# ------------------------------------------------------------------ 3. slow, greedy and inflating hosts


async def test_a_host_that_drips_bytes_is_cut_off_at_the_deadline(internet: Internet, api_url: str) -> None:
    settings = Settings(api_token=TOKEN, base_url=api_url, fetch_timeout_s=1.5)
    async with server(settings, **internet.seams()) as (_, client):
        started = time.monotonic()
        url = f"https://{HOSTILE_HOST}/drip.png"
        result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": url})
        elapsed = time.monotonic() - started
    assert result.is_error and "did not finish answering within 1.5 s" in text_of(result)
    assert elapsed < 5


async def test_a_hundred_stalled_callers_do_not_starve_another(
    internet: Internet, api_url: str, simulator: Simulator
) -> None:
    settings = Settings(base_url=api_url, fetch_timeout_s=6)
    drip = {"prompt": "x", "first_frame_image_url": f"https://{HOSTILE_HOST}/drip.png"}
    ok = {"prompt": "a cat", "first_frame_image_url": f"https://{HOSTILE_HOST}/ok.png"}
    legit: dict[str, Any] = {}
    async with server(settings, **internet.seams()) as (runtime, _), anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(runtime.tools.call, LITE, drip, no_progress, caller(f"made-up-{i}"))
        with anyio.fail_after(5):
            while internet.hostile.requests.count("/drip.png") < 100:
                await anyio.sleep(0.02)
        started = time.monotonic()
        result = await runtime.tools.call(LITE, ok, no_progress, Caller(token=TOKEN, owner="alice", private=True))
        legit["elapsed"] = time.monotonic() - started
        assert not result.is_error, text_of(result)
        assert internet.hostile.requests.count("/drip.png") == 100  # they were all still stalled
        tg.cancel_scope.cancel()
    assert legit["elapsed"] < 3
    assert len(simulator.calls.submits) == 1


async def test_one_caller_cannot_hold_more_than_its_share_of_fetches(internet: Internet, api_url: str) -> None:
    settings = Settings(base_url=api_url, fetch_timeout_s=6, max_fetches_per_caller=3)
    drip = {"prompt": "x", "first_frame_image_url": f"https://{HOSTILE_HOST}/drip.png"}
    mallory = caller("mallory")
    async with server(settings, **internet.seams()) as (runtime, _), anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(runtime.tools.call, LITE, drip, no_progress, mallory)
        with anyio.fail_after(5):
            while internet.hostile.requests.count("/drip.png") < 3:
                await anyio.sleep(0.02)
        fourth = await runtime.tools.call(LITE, drip, no_progress, mallory)
        assert fourth.is_error and "3 fetches of yours are already in flight" in text_of(fourth)
        assert internet.hostile.requests.count("/drip.png") == 3
        tg.cancel_scope.cancel()
    # Once their calls end, nothing of them is kept.
    assert runtime.tools.services.jobs().inputs.loader.slots.in_flight(mallory.owner) == 0


@pytest.mark.parametrize("serving", ["http", "stdio"])
async def test_a_gzip_bomb_is_never_inflated_past_the_cap(internet: Internet, api_url: str, serving: str) -> None:
    # HTTP: a public URL, probed. stdio: a URL RunComfy cannot reach, fetched whole and inlined (Dreamina: 4.7 MB).
    url = f"https://{HOSTILE_HOST}/bomb.png" if serving == "http" else f"http://{INTERNAL_HOST}/bomb.png"
    internet.network.routes["127.0.0.1"] = internet.network.routes[HOSTILE_IP]
    async with server(Settings(api_token=TOKEN, base_url=api_url), serving=serving, **internet.seams()) as (_, c):
        await c.call_tool("list_jobs", {})
        tracemalloc.start()
        result = await c.call_tool(DREAMINA, {"prompt": "waves", "image_urls": [url]})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert result.is_error and "File size must be less than 4.7 MB" in text_of(result), text_of(result)
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB while reading a 200 KB body"


# ------------------------------------------------------------------ 4. downloads


@pytest.fixture
def finished(simulator: Simulator, clock: ManualClock) -> Any:
    async def submit_and_finish(client: Client) -> str:
        job = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": PNG_URI})
        clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
        return str(structured(job)["request_id"])

    return submit_and_finish


async def test_a_remote_caller_is_never_handed_a_path_on_the_server(
    api_url: str, finished: Any, tmp_path: Path
) -> None:
    async with server(Settings(api_token=TOKEN, base_url=api_url)) as (_, client):
        request_id = await finished(client)
        result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
        listed = structured(await client.call_tool("list_jobs", {}))["jobs"][0]
    text = text_of(result)
    assert not result.is_error, text
    assert structured(result)["local_files"] == [] and f"Saved on the server as {request_id}.mp4" in text
    assert str(tmp_path) not in str(result.model_dump()) and "file://" not in str(result.model_dump())
    assert listed["local_files"] == [f"{request_id}.mp4"]
    assert (tmp_path / "videos" / f"{request_id}.mp4").stat().st_size == 2 * 1024 * 1024


async def test_an_output_url_off_the_file_hosts_is_not_fetched(
    api_url: str, simulator: Simulator, finished: Any
) -> None:
    hits = HostileHost()
    async with serve_on_loopback(hits.app()) as elsewhere:
        simulator.file_base_url = elsewhere  # loopback, but not the API's own origin
        async with server(Settings(api_token=TOKEN, base_url=api_url)) as (_, client):
            request_id = await finished(client)
            result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert result.is_error and "not on RunComfy's file hosts" in text_of(result)
    assert hits.requests == []


async def test_a_download_without_a_length_stops_at_the_cap(
    api_url: str, simulator: Simulator, finished: Any, tmp_path: Path
) -> None:
    simulator.stream_files = True
    settings = Settings(api_token=TOKEN, base_url=api_url, max_download_mb=1)
    async with server(settings) as (_, client):
        request_id = await finished(client)
        result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert result.is_error and "over the 1 MB this server saves" in text_of(result)
    assert list((tmp_path / "videos").iterdir()) == []  # no partial file left behind


async def test_a_slow_download_ends_at_its_deadline(
    api_url: str, simulator: Simulator, finished: Any, tmp_path: Path
) -> None:
    simulator.stream_files, simulator.file_chunk_delay_s = True, 0.2
    settings = Settings(api_token=TOKEN, base_url=api_url, download_timeout_s=0.5)
    async with server(settings, serving="stdio") as (_, client):
        request_id = await finished(client)
        result = await client.call_tool("get_result", {"request_id": request_id, "download": True})
    assert result.is_error and "did not finish within 0.5 s" in text_of(result)
    assert list((tmp_path / "videos").iterdir()) == []


# ------------------------------------------------------------------ 5. IPv6 forms


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:7f00:1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b:1::c0a8:101", False),  # local-use NAT64
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("fec0::1", False),  # site-local
        ("2001::1", False),  # Teredo
        ("::", False),
        ("::1", False),
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address (an IPv6-only network's DNS64)
        ("2606:4700::6810:85e5", True),
        ("93.184.216.34", True),
    ],
)
def test_ipv6_forms_that_wrap_private_addresses_are_not_public(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize("host", ["[::7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]", "[fec0::1]", "v6.example"])
async def test_ipv6_forms_are_refused_over_http(internet: Internet, api_url: str, host: str) -> None:
    seams = {**internet.seams(), "resolver": resolver_for({"v6.example": ["64:ff9b::7f00:1"]})}
    async with server(Settings(api_token=TOKEN, base_url=api_url), **seams) as (_, client):
        url = f"https://{host}/ok.png"
        result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": url})
    assert result.is_error and "private network" in text_of(result), text_of(result)
    assert internet.network.connected == []


# ------------------------------------------------------------------ 6. local files that change under us


async def test_a_file_swapped_between_check_and_read_never_leaks(
    api_url: str, simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "root", tmp_path / "secret"
    root.mkdir(), outside.mkdir()
    inside_image, outside_image = make_image(640, 480), make_image(700, 500)
    (root / "inside.png").write_bytes(inside_image)
    (outside / "secret.png").write_bytes(outside_image)
    link = root / "photo.png"
    os.link(root / "inside.png", link)
    stop = threading.Event()

    def swap() -> None:
        flip = 0
        while not stop.is_set():
            flip += 1
            spare = root / f".swap-{flip}"
            if flip % 2:
                os.symlink(outside / "secret.png", spare)
            else:
                os.link(root / "inside.png", spare)
            os.replace(spare, link)

    settings = Settings(api_token=TOKEN, base_url=api_url, input_roots=str(root))
    thread = threading.Thread(target=swap, daemon=True)
    async with server(settings, serving="stdio") as (_, client):
        thread.start()
        try:
            for _ in range(300):
                await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": str(link)})
        finally:
            stop.set()
            thread.join()
    sent = [base64.b64decode(s["arguments"]["first_frame_image_url"].split(",", 1)[1]) for s in simulator.calls.submits]
    assert sent, "no call got through at all"
    assert all(data == inside_image for data in sent), "an image from outside the input roots was sent"


# ------------------------------------------------------------------ 7. malformed input


@pytest.mark.parametrize("request_id", ["sim-1\n", "sim-1\r\n", "\nsim-1", "sim 1", ""])
async def test_a_malformed_request_id_is_named(api_url: str, request_id: str) -> None:
    async with server(Settings(api_token=TOKEN, base_url=api_url), serving="stdio") as (_, client):
        for tool in ("get_status", "get_result", "cancel", "wait_for_result"):
            result = await client.call_tool(tool, {"request_id": request_id})
            assert result.is_error and "is not a RunComfy request id" in text_of(result), (tool, text_of(result))


@pytest.mark.parametrize("serving", ["http", "stdio"])
@pytest.mark.parametrize(
    "value",
    [
        "https://[::1/x.png",
        "https://[zz::1]/x.png",
        "https://exa\u202emple.com/x.png",
        "https://xn--a.example/x.png",
        "https://a\u3002\ufe0e.example/x.png",
        "https://" + "a" * 300 + ".example/x.png",
        "/tmp/a\x00b.png",
        "file:///tmp/a%00b.png",
        "https://images.example.com/a\x00b.png",
    ],
)
async def test_a_malformed_url_or_path_is_named(internet: Internet, api_url: str, value: str, serving: Serving) -> None:
    async with server(Settings(api_token=TOKEN, base_url=api_url), serving=serving, **internet.seams()) as (_, c):
        result = await c.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": value})
    text = text_of(result)
    assert result.is_error and "first_frame_image_url:" in text and "internal error" not in text, text


# ------------------------------------------------------------------ 8. --shared-token


def test_help_says_what_a_shared_token_shares() -> None:
    import subprocess

    shown = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "one history" in " ".join(shown.split())
