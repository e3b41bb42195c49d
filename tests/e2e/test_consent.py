"""The person's yes on protocol 2026-07-28 (asked by InputRequiredResult, answered in a second call), attacked:
replayed, forged, moved to another call or caller, kept past its time, answered twice on two replicas."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import TOKEN
from helpers import SEEDANCE_LITE_ARGS, text_of
from http_servers import http_server
from images import FakeImageHost, fake_resolver, make_image
from mcp import Client
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.sandbox.simulator import Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"  # $0.018 per second: 10 s = $0.18, above the $0.1 threshold
BIG = {**SEEDANCE_LITE_ARGS, "duration": 10}
KEY = "k" * 16 + "0123456789abcdef0123456789abcdef"
YES = types.ElicitResult(action="accept", content={"confirm": True})
BOB = "rc-bob-token-2b9e44f0"
INLINED = {**BIG, "first_frame_image_url": "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()}


def posts(simulator: Simulator) -> int:
    return len(simulator.calls.submits)


async def never_asked(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
    raise AssertionError("these tests answer by hand")


@asynccontextmanager
async def replicas(settings: Settings, count: int = 1) -> AsyncIterator[list[Client]]:
    """`count` servers on one history and one key (replicas, in this process), a 2026-07-28 client on each."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            runtime = await stack.enter_async_context(
                open_runtime(settings, media_transport=FakeImageHost().transport(), resolver=fake_resolver)
            )
            server = build_server(runtime.tools, consent_keys=settings.consent_keys())
            clients.append(
                await stack.enter_async_context(Client(server, mode="auto", elicitation_callback=never_asked))
            )
        yield clients


def asking_client(url: str, token: str) -> Client:
    """A 2026-07-28 client over streamable HTTP that can be asked (the answers are given by hand here)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(url, http_client=http), mode="auto", elicitation_callback=never_asked)


def confirm_settings(api_url: str, **extra: Any) -> Settings:
    return Settings(api_token=TOKEN, base_url=api_url, confirm_above_usd=0.1, consent_key=KEY, **extra)


async def ask(client: Client, arguments: dict[str, Any] = BIG) -> types.InputRequiredResult:
    first = await client.session.call_tool(LITE, arguments, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult), first
    assert first.request_state and "spend" not in first.request_state  # sealed: nothing readable
    return first


async def answer(
    client: Client, state: str | None, arguments: dict[str, Any] = BIG
) -> types.CallToolResult | types.InputRequiredResult:
    return await client.session.call_tool(
        LITE, arguments, input_responses={"confirm_spend": YES}, request_state=state, allow_input_required=True
    )


@pytest.fixture(params=["sqlite", "postgres"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("database_url")}
    return {"data_dir": tmp_path / "shared-history"}


async def test_one_yes_sends_one_job_however_often_it_is_replayed(
    api_url: str, simulator: Simulator, history: dict[str, Any]
) -> None:
    async with replicas(confirm_settings(api_url, **history)) as (client,):
        question = await ask(client)
        sent = await answer(client, question.request_state)
        assert isinstance(sent, types.CallToolResult) and not sent.is_error, sent
        for _ in range(5):
            replayed = await answer(client, question.request_state)
            assert isinstance(replayed, types.CallToolResult) and replayed.is_error
            assert "already used" in text_of(replayed) and "nothing was sent" in text_of(replayed)
    assert posts(simulator) == 1


async def test_a_yes_answered_on_one_replica_cannot_be_used_again_on_another(
    api_url: str, simulator: Simulator, history: dict[str, Any]
) -> None:
    async with replicas(confirm_settings(api_url, **history), count=2) as (a, b):
        question = await ask(a)
        sent = await answer(b, question.request_state)  # the balancer sent the answer elsewhere: fine, once
        assert isinstance(sent, types.CallToolResult) and not sent.is_error, sent
        again = await answer(a, question.request_state)
        assert isinstance(again, types.CallToolResult) and again.is_error and "already used" in text_of(again)
    assert posts(simulator) == 1


async def test_a_state_the_client_made_itself_is_refused(api_url: str, simulator: Simulator) -> None:
    forged_digest = json.dumps([LITE, BIG, 0.18, "bytedance/seedance-1-0/lite/image-to-video"], sort_keys=True)
    forgeries = [
        "spend:" + hashlib.sha256(forged_digest.encode()).hexdigest()[:32],  # what the server used to accept
        json.dumps({"n": "x", "usd": 0.18, "model": "bytedance/seedance-1-0/lite/image-to-video"}),
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]
    async with replicas(confirm_settings(api_url)) as (client,):
        for forged in forgeries:
            with pytest.raises(MCPError, match="Invalid or expired requestState"):
                await answer(client, forged)
        unasked = await answer(client, None)  # a "yes" with no question: the question is asked
        assert isinstance(unasked, types.InputRequiredResult)
    assert posts(simulator) == 0


async def test_a_yes_counts_only_for_the_call_it_was_given_for(api_url: str, simulator: Simulator) -> None:
    async with replicas(confirm_settings(api_url)) as (client,):
        question = await ask(client)  # for 10 s
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await answer(client, question.request_state, {**BIG, "prompt": "something else entirely"})
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await client.session.call_tool(
                "run_model",
                {"model_id": "bytedance/seedance-1-0/lite/image-to-video", "input": BIG},
                input_responses={"confirm_spend": YES},
                request_state=question.request_state,
                allow_input_required=True,
            )
    assert posts(simulator) == 0


async def test_a_yes_expires(api_url: str, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import mcp.server.request_state as sealing

    async with replicas(confirm_settings(api_url)) as (client,):
        question = await ask(client)
        later = time.time() + 11 * 60  # an answer after the question's ten minutes
        monkeypatch.setattr(sealing.time, "time", lambda: later)
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await answer(client, question.request_state)
    assert posts(simulator) == 0


async def test_one_callers_yes_is_not_anothers(
    api_url: str, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator.tokens.add(BOB)
    monkeypatch.setenv("RUNCOMFY_CONFIRM_ABOVE_USD", "0.1")
    monkeypatch.setenv("RUNCOMFY_CONSENT_KEY", KEY)
    async with (
        http_server(api_url, token=None) as url,
        asking_client(url, TOKEN) as alice,
        asking_client(url, BOB) as bob,
    ):
        first = await alice.session.call_tool(LITE, INLINED, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await bob.session.call_tool(
                LITE,
                INLINED,
                input_responses={"confirm_spend": YES},
                request_state=first.request_state,
                allow_input_required=True,
            )
        mine = await alice.session.call_tool(
            LITE, INLINED, input_responses={"confirm_spend": YES}, request_state=first.request_state,
            allow_input_required=True,
        )  # fmt: skip
        assert isinstance(mine, types.CallToolResult) and not mine.is_error, mine
    assert posts(simulator) == 1


async def test_a_stateless_http_server_that_asks_needs_a_shared_key(api_url: str, tmp_path: Path) -> None:
    """Replicas each with a key of their own would refuse each other's questions: refused at start, with the fix."""
    import os
    import subprocess

    from http_servers import SCRIPT, server_env

    env = {**server_env(api_url), "RUNCOMFY_CONFIRM_ABOVE_USD": "0.1"}
    env.pop("RUNCOMFY_CONSENT_KEY", None)
    command = [str(SCRIPT), "--transport", "http", "--stateless", "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and "RUNCOMFY_CONSENT_KEY" in done.stderr, done.stderr
    assert os.environ.get("RUNCOMFY_CONSENT_KEY") is None
