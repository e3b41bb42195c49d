"""Attacks from the catalog: RunComfy's listing is upstream data, so every schema, pattern and text in it is
treated like a caller's input. Each test is one attack; it must fail for the entry that carries it and change
nothing for every other model and caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from conftest import TOKEN, ClientFactory
from helpers import structured, text_of
from mcp import Client
from runcomfy_mcp.sandbox.catalog import sandbox_catalog
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

FLUX = "blackforestlabs/flux-2/flash/text-to-image"


def hostile_entry(model_id: str, properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "display_name": model_id.split("/")[1],
        "description": "A model of the attacker's making.",
        "categories": ["text-to-image"],
        "base_price_usd": 0.01,
        "price_unit": "output",
        "output_kind": "image",
        "input_schema": {"type": "object", "required": list(properties)[:1], "properties": properties},
        **more,
    }


REDOS = hostile_entry(
    "mallory/redos/text-to-image",
    {"prompt": {"type": "string"}, "code": {"type": "string", "pattern": "^(a+)+$"}},
)
LOOKAROUND = hostile_entry(
    "mallory/lookaround/text-to-image",
    {"prompt": {"type": "string", "pattern": "^(?=.*[0-9])\\w+$", "description": "Letters and a digit."}},
)


@pytest.fixture
def hostile_catalog() -> list[dict[str, Any]]:
    return [REDOS, LOOKAROUND]


@pytest.fixture
async def hostile_api(clock: ManualClock, hostile_catalog: list[dict[str, Any]]) -> AsyncIterator[Simulator]:
    simulator = Simulator(token=TOKEN, catalog=sandbox_catalog() + hostile_catalog, clock=clock)
    async with serve_on_loopback(simulator.app()) as url:
        simulator.base_url = url
        yield simulator


@pytest.fixture
async def client(connect: ClientFactory, hostile_api: Simulator) -> AsyncIterator[Client]:
    async with connect(Settings(api_token=TOKEN, base_url=hostile_api.base_url)) as c:
        yield c


# ------------------------------------------------------------------ 4. patterns


async def test_a_catastrophic_pattern_is_matched_in_linear_time(client: Client, hostile_api: Simulator) -> None:
    """`^(a+)+$` took 4.5 s on 28 characters with a backtracking engine, doubling with each one: on 60 it would
    outlive the test run."""
    attack = {"model_id": REDOS["model_id"], "input": {"prompt": "x", "code": "a" * 60 + "!"}}
    with anyio.fail_after(30):
        refused = await client.call_tool("run_model", attack)
        fine = await client.call_tool(
            "run_model", {"model_id": REDOS["model_id"], "input": {"prompt": "x", "code": "aaa"}}
        )
    assert refused.is_error and "code:" in text_of(refused) and "does not match" in text_of(refused)
    assert not fine.is_error, text_of(fine)
    assert [s["arguments"]["code"] for s in hostile_api.calls.submits] == ["aaa"]


async def test_arguments_too_big_to_check_are_refused_before_any_schema_work(
    client: Client, hostile_api: Simulator
) -> None:
    """A million values (about 4 MB of JSON) would keep a validator busy for seconds: counted first, refused."""
    attack = {"model_id": REDOS["model_id"], "input": {"prompt": "x", "code": "aaa", "extra": [[0] * 1000] * 1000}}
    with anyio.fail_after(30):
        refused = await client.call_tool("run_model", attack)
        found = await client.call_tool("find_models", {"query": "flux"})
    assert refused.is_error and "more than" in text_of(refused) and "values" in text_of(refused)
    assert structured(found)["models"][0]["model_id"] == FLUX and hostile_api.calls.submits == []


async def test_a_pattern_a_linear_engine_cannot_compile_is_left_to_runcomfy(
    client: Client, hostile_api: Simulator
) -> None:
    described = structured(await client.call_tool("describe_model", {"model_id": LOOKAROUND["model_id"]}))
    prompt = described["input_schema"]["properties"]["prompt"]
    assert described["runnable"] and "pattern" not in prompt
    assert "Letters and a digit." in prompt["description"] and "checked by RunComfy" in prompt["description"]
    run = await client.call_tool("run_model", {"model_id": LOOKAROUND["model_id"], "input": {"prompt": "abc1"}})
    assert not run.is_error, text_of(run)
