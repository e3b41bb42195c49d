"""Attacks on the shared HTTP port: sessions as a free resource, slow clients holding connections, bodies.

Each test is an attack from the security review run against the console script as it is started in
production (uvicorn and all), then what everyone else still gets.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import TOKEN
from helpers import structured, text_of
from http_servers import http_client, http_server
from images import make_media
from runcomfy_mcp.sandbox.simulator import Simulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
OTHER_TOKEN = "rc-other-caller-9d81c3aa"


def initialize(name: str = "probe") -> dict[str, Any]:
    client_info = {"name": name, "version": "1"}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client_info}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


def from_address(address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any 127.x.y.z is this machine, a stranger to the server),
    at most 32 at once (the sessions are the attack here, not the connections)."""
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_connections=32))
    return httpx.AsyncClient(transport=transport, timeout=20)


async def open_session(http: httpx.AsyncClient, url: str, token: str | None, body: Any = None) -> httpx.Response:
    headers = {**HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return await http.post(url, json=body or initialize(), headers=headers)


def session_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


# ------------------------------------------------------------------ 8. sessions are not free


async def test_a_session_is_opened_only_with_a_credential(api_url: str) -> None:
    async with http_server(api_url, token=None) as url, httpx.AsyncClient() as http:
        anonymous = await open_session(http, url, None)
        assert anonymous.status_code == 401 and "mcp-session-id" not in anonymous.headers
        assert "Authorization: Bearer" in anonymous.text
        assert session_of(await open_session(http, url, TOKEN))
        async with http_client(url, TOKEN, mode="legacy") as client:
            assert {"list_jobs", "get_status"} <= {t.name for t in (await client.list_tools()).tools}


async def test_made_up_tokens_from_one_address_cannot_take_every_session(api_url: str) -> None:
    """The review's flood: initialize after initialize, each with a new made-up token, from one address."""
    env = {"RUNCOMFY_HTTP_SESSIONS_PER_ADDRESS": "20"}
    async with http_server(api_url, token=None, env=env) as url, from_address("127.0.0.2") as flood:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await open_session(flood, url, f"rc-made-up-{secrets.token_hex(8)}")).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(200):
                group.start_soon(one)
        assert statuses.count(200) == 20 and statuses.count(429) == 180
        refused = await open_session(flood, url, f"rc-made-up-{secrets.token_hex(8)}")
        assert refused.status_code == 429 and "20 open sessions" in refused.text and refused.headers["retry-after"]
        async with from_address("127.0.0.1") as someone_else:
            assert session_of(await open_session(someone_else, url, TOKEN))


async def test_one_token_cannot_take_every_session(api_url: str) -> None:
    env = {"RUNCOMFY_HTTP_SESSIONS_PER_CALLER": "3"}
    async with http_server(api_url, token=None, env=env) as url, httpx.AsyncClient() as http:
        mine = [session_of(await open_session(http, url, TOKEN)) for _ in range(3)]
        fourth = await open_session(http, url, TOKEN)
        assert fourth.status_code == 429 and "3 open sessions" in fourth.text and "DELETE" in fourth.text
        assert session_of(await open_session(http, url, OTHER_TOKEN))  # another caller is not affected
        headers = {**HEADERS, "Authorization": f"Bearer {TOKEN}", "Mcp-Session-Id": mine[0]}
        assert (await http.delete(url, headers=headers)).status_code == 200
        assert session_of(await open_session(http, url, TOKEN))  # a closed session frees its place at once


async def test_idle_sessions_expire_quickly(api_url: str) -> None:
    env = {"RUNCOMFY_HTTP_SESSIONS_PER_CALLER": "2", "RUNCOMFY_HTTP_SESSION_IDLE_S": "1"}
    async with http_server(api_url, token=None, env=env) as url, httpx.AsyncClient() as http:
        first = session_of(await open_session(http, url, TOKEN))
        session_of(await open_session(http, url, TOKEN))
        assert (await open_session(http, url, TOKEN)).status_code == 429
        await anyio.sleep(2)
        assert session_of(await open_session(http, url, TOKEN))
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = {**HEADERS, "Authorization": f"Bearer {TOKEN}", "Mcp-Session-Id": first}
        assert (await http.post(url, json=ping, headers=headers)).status_code == 404  # expired, and said so


async def test_a_session_cannot_keep_a_huge_handshake(api_url: str) -> None:
    """What initialize carries is kept for the session's life: a megabyte of it would multiply by every session."""
    async with http_server(api_url, token=None) as url, httpx.AsyncClient() as http:
        huge = await open_session(http, url, TOKEN, initialize("x" * 1024 * 1024))
        assert huge.status_code == 413 and "mcp-session-id" not in huge.headers
        assert session_of(await open_session(http, url, TOKEN))


# ------------------------------------------------------------------ 9. slow clients


SLOW_CLIENTS = Path(__file__).parent.parent / "slow_clients.py"


async def slow_clients(url: str, count: int, seconds: float, phase: str, *headers: str) -> list[tuple[str, float]]:
    """`count` slow connections from 11 addresses (127.0.1.x), each trickling for up to `seconds`: what ended each,
    and when."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    command = [sys.executable, str(SLOW_CLIENTS), port, str(count), str(seconds), phase, "127.0.1", *headers]
    done = await anyio.run_process(command)
    return [(outcome, held) for outcome, held in json.loads(done.stdout)]


async def test_slow_headers_cannot_shut_others_out(api_url: str) -> None:
    """The review's slowloris: 1,100 connections trickling their headers, here from 11 addresses, at a server whose
    soft limit of open files is 512 (common defaults are 1,024: the attack used to take them all, and a caller's
    initialize then waited for the whole minute). A legitimate caller is served at once, and every slow connection is
    cut off at the header deadline."""
    env = {"RUNCOMFY_HTTP_HEADER_TIMEOUT_S": "2"}
    attack: list[tuple[str, float]] = []
    async with http_server(api_url, token=None, env=env, open_files=512) as url:
        async with httpx.AsyncClient(timeout=10) as warm_up:
            session_of(await open_session(warm_up, url, TOKEN))  # the first session costs more: not measured

        async def attacker() -> None:
            attack.extend(await slow_clients(url, 1100, 10.0, "head"))

        async with anyio.create_task_group() as group:
            group.start_soon(attacker)
            await anyio.sleep(2.0)
            before = time.monotonic()
            async with httpx.AsyncClient(timeout=10) as newcomer:
                session_of(await open_session(newcomer, url, OTHER_TOKEN))
            served_in = time.monotonic() - before
    assert served_in < 5, f"a caller waited {served_in:.1f} s during the attack"
    outcomes = [outcome for outcome, _ in attack]
    assert len(outcomes) == 1100 and "still open" not in outcomes, outcomes  # each trickled for up to 10 s
    # each is told why when it still reads (a 408 at the deadline, a 503 beyond its address's share), or is closed
    assert set(outcomes) <= {"HTTP/1.1 408 Request Timeout", "HTTP/1.1 503 Service Unavailable", "closed"}
    typical = sorted(held for _, held in attack)[len(attack) // 2]
    assert typical < 5, f"a slow connection typically lasted {typical:.1f} s (the header deadline is 2 s)"


async def test_one_address_holds_only_its_share_of_connections(api_url: str) -> None:
    env = {"RUNCOMFY_HTTP_CONNECTIONS_PER_ADDRESS": "8", "RUNCOMFY_HTTP_HEADER_TIMEOUT_S": "30"}
    async with http_server(api_url, token=None, env=env) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        held = [await anyio.connect_tcp("127.0.0.1", port, local_host="127.0.2.1") for _ in range(8)]
        try:
            one_more = await anyio.connect_tcp("127.0.0.1", port, local_host="127.0.2.1")
            with anyio.fail_after(5):
                assert (await one_more.receive()).startswith(b"HTTP/1.1 503")
            await one_more.aclose()
            async with from_address("127.0.2.2") as elsewhere:  # another address is not affected
                assert session_of(await open_session(elsewhere, url, TOKEN))
        finally:
            for stream in held:
                await stream.aclose()
        async with from_address("127.0.2.1") as again:  # and the address gets its place back as they close
            assert session_of(await open_session(again, url, TOKEN))


async def test_a_slow_body_is_cut_off(api_url: str) -> None:
    env = {"RUNCOMFY_HTTP_BODY_TIMEOUT_S": "2"}
    async with http_server(api_url, token=None, env=env) as url:
        credential = f"Authorization: Bearer {TOKEN}"
        ended = await slow_clients(url, 3, 10.0, "body", credential, f"Accept: {HEADERS['Accept']}")
    assert [outcome for outcome, _ in ended] == ["HTTP/1.1 408 Request Timeout"] * 3
    assert max(held for _, held in ended) < 5


# ------------------------------------------------------------------ 10. the body cap the README promises


async def test_a_20_mb_inlined_video_goes_through_http(api_url: str, simulator: Simulator) -> None:
    video = make_media("video", 20 * 1024 * 1024)
    uri = "data:video/mp4;base64," + base64.b64encode(video).decode()
    run = {"model_id": "luma/ray-2/flash/modify-video", "input": {"video_url": uri, "prompt": "make it snow"}}
    async with http_server(api_url, token=None) as url:
        for mode in ("auto", "legacy"):
            async with http_client(url, TOKEN, mode=mode, timeout_s=60) as client:  # 27 MB each way, 2 cores
                result = await client.call_tool("run_model", run)
            assert not result.is_error, text_of(result)
            assert structured(result)["request_id"] in simulator.jobs
    assert [len(s["arguments"]["video_url"]) for s in simulator.calls.submits] == [len(uri), len(uri)]


async def test_a_body_over_the_cap_is_refused_before_it_is_read(api_url: str) -> None:
    async with http_server(api_url, token=None) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(
                f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() + b"Content-Type: application/json\r\n"
                b"Accept: application/json, text/event-stream\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {71 * 1024 * 1024}\r\n\r\n".encode()
            )
            assert raw.recv(200).startswith(b"HTTP/1.1 413")


# ------------------------------------------------------------------ the log of a stateless server


async def test_stateless_http_logs_no_line_per_request(api_url: str) -> None:
    log: list[str] = []
    async with http_server(api_url, "--stateless", token=None, log=log) as url:
        for _ in range(3):
            async with http_client(url, TOKEN, mode="legacy") as client:
                await client.list_tools()
    assert log and not [line for line in log if "Terminating session" in line]
