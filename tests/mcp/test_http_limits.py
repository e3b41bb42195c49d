"""The HTTP gates on their own: request bodies held at once, and sessions that count while a request holds them."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.mcp.http_limits import BodyBudget, SessionGate, SessionLimits

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def scope(method: str = "POST", **headers: str) -> Scope:
    headers.setdefault("content_type", "application/json")
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "headers": raw, "client": ("192.0.2.7", 5000), "path": "/mcp"}


async def call(app: Any, request: Scope, body: bytes = b"{}") -> tuple[int, dict[str, str]]:
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(request, receive, send)
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start.get("headers", [])}


async def test_large_bodies_beyond_the_budget_are_told_to_come_back() -> None:
    release = anyio.Event()
    served: list[int] = []

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        served.append(1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    budget = BodyBudget(slow_app, max_body=70 * MIB)
    answers: list[int] = []

    async def upload(size: int) -> None:
        answers.append((await call(budget, scope(content_length=str(size))))[0])

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(upload, 60 * MIB)
        await anyio.sleep(0.05)
        status, headers = await call(budget, scope(content_length=str(60 * MIB)))
        assert status == 503 and headers["retry-after"] == "5"
        small = anyio.Event()

        async def tiny() -> None:
            answers.append((await call(budget, scope(content_length="300")))[0])
            small.set()

        group.start_soon(tiny)  # a small request still fits beside the four large ones
        await anyio.sleep(0.05)
        release.set()
    assert answers.count(200) == 5 and budget.left == 4 * 70 * MIB


async def test_a_session_in_use_never_expires_and_an_idle_one_does() -> None:
    now = [0.0]
    hold = anyio.Event()
    opened = iter(["s1", "s2"])

    async def transport(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        if b"mcp-session-id" in headers:
            await hold.wait()  # a long tool call (or an open GET stream) in the session
            raw: list[tuple[bytes, bytes]] = []
        else:
            raw = [(b"mcp-session-id", next(opened).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": b""})

    def caller_of(request: object) -> Caller:
        return Caller.with_token("rc-gate-token-1234")

    limits = SessionLimits(per_caller=1, per_address=10, idle_s=60)
    gate = SessionGate(transport, caller_of, limits, clock=lambda: now[0])
    assert (await call(gate, scope()))[0] == 200
    async with anyio.create_task_group() as group:
        group.start_soon(call, gate, scope(mcp_session_id="s1"))
        await anyio.sleep(0.05)
        now[0] = 3600.0  # an hour into one call: the session is not idle
        assert (await call(gate, scope()))[0] == 429
        hold.set()
    now[0] += 62  # now idle past the limit
    assert gate.open_sessions() == 0 and (await call(gate, scope()))[0] == 200
