"""Attacks from the catalog: RunComfy's listing is upstream data, so every schema, pattern and text in it is
treated like a caller's input. Each test is one attack; it must fail for the entry that carries it and change
nothing for every other model and caller."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import Response

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


DEEP_MARK = "__nested__"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# JSON nested deeper than Python's own tools go: the listing carries it as raw text (see HostileSimulator).
DEEP_LISTING = hostile_entry("mallory/deep/text-to-image", {"prompt": {"type": "string", "default": DEEP_MARK}})
DEEP_SCHEMA = hostile_entry("mallory/deep-schema/text-to-image", {"prompt": {"type": "string"}})
DEEP_SCHEMA["input_schema"]["properties"]["tree"] = {"$nested_objects": 600}
REF_LOOP = hostile_entry(
    "mallory/ref-loop/text-to-image",
    {"prompt": {"type": "string"}, "node": {"$ref": "#/$defs/node"}},
    input_schema={
        "type": "object",
        "required": ["prompt"],
        "properties": {"prompt": {"type": "string"}, "node": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
    },
)
SHARED_PARTS = hostile_entry(
    "honest/refs/text-to-image",
    {},
    input_schema={
        "type": "object",
        "required": ["prompt"],
        "properties": {"prompt": {"$ref": "#/$defs/text"}, "negative_prompt": {"$ref": "#/$defs/text"}},
        "$defs": {"text": {"type": "string", "maxLength": 10}},
    },
)


def _objects(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"x": node}}
    return node


class HostileSimulator(Simulator):
    """Serves its catalog as raw text, so an entry can be nested deeper than `json.dumps` itself would go."""

    async def _list_models(self, request: Request) -> Response:
        page = await super()._list_models(request)
        return self._spliced(page)

    async def _model(self, request: Request) -> Response:
        return self._spliced(await super()._model(request))

    @staticmethod
    def _spliced(page: Response) -> Response:
        text = bytes(page.body).decode()
        text = text.replace(json.dumps(DEEP_MARK), nested(3000))
        text = text.replace('{"$nested_objects":600}', json.dumps(_objects(300)))  # 600 levels: json reads it
        return Response(text, status_code=page.status_code, media_type="application/json")


WORDY = hostile_entry(
    "mallory/wordy/text-to-image",
    {
        "prompt": {"type": "string", "description": "Say it. " + "Really, say it. " * 2000},
        **{
            f"knob_{i}": {"type": "string", "description": "x" * 4000, "title": "T" * 5000, "examples": ["e" * 9000]}
            for i in range(30)
        },
        "style": {"type": "string", "enum": [f"style-{i}-{'s' * 40}" for i in range(5000)]},
    },
    display_name="W" * 50_000,
    description="An essay. " * 20_000,
    categories=[f"category-{i}-{'c' * 500}" for i in range(2000)],
    price_unit="u" * 10_000,
    pricing_note="n" * 100_000,
    model_url="https://example.com/" + "p" * 100_000,
)


@pytest.fixture
def hostile_catalog() -> list[dict[str, Any]]:
    return [REDOS, LOOKAROUND, DEEP_LISTING, DEEP_SCHEMA, REF_LOOP, SHARED_PARTS, WORDY]


@pytest.fixture
async def hostile_api(clock: ManualClock, hostile_catalog: list[dict[str, Any]]) -> AsyncIterator[Simulator]:
    simulator = HostileSimulator(token=TOKEN, catalog=sandbox_catalog() + hostile_catalog, clock=clock)
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


# ------------------------------------------------------------------ 5. depth


async def test_an_entry_nested_3000_deep_is_skipped_and_every_other_model_works(
    client: Client, hostile_api: Simulator
) -> None:
    found = await client.call_tool("find_models", {"query": "flux"})
    assert not found.is_error and structured(found)["source"] == "live"
    assert structured(found)["models"][0]["model_id"] == FLUX
    assert "mallory/deep/text-to-image" in text_of(found) and "could not be read" in text_of(found)
    ran = await client.call_tool("run_model", {"model_id": FLUX, "input": {"prompt": "a kite"}})
    assert not ran.is_error and "Estimated cost: $0.008" in text_of(ran)  # estimates read the same listing
    quoted = await client.call_tool("estimate_cost", {"model_id": "seedance_1_0_lite_image_to_video", "input": {}})
    assert "internal error" not in text_of(quoted)
    deep = await client.call_tool("describe_model", {"model_id": "mallory/deep/text-to-image"})
    assert deep.is_error and "nested more than" in text_of(deep) and "Other models still work" in text_of(deep)


async def test_a_schema_600_deep_is_not_runnable_and_says_why(client: Client, hostile_api: Simulator) -> None:
    described = await client.call_tool("describe_model", {"model_id": DEEP_SCHEMA["model_id"]})
    assert "nested more than" in text_of(described) and "internal error" not in text_of(described)
    run = await client.call_tool("run_model", {"model_id": DEEP_SCHEMA["model_id"], "input": {"prompt": "x"}})
    assert run.is_error and "nested more than" in text_of(run) and hostile_api.calls.submits == []


async def test_a_deep_model_in_runcomfy_models_is_left_out_and_the_server_starts(
    connect: ClientFactory, hostile_api: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    models = f"{DEEP_SCHEMA['model_id']},mallory/deep/text-to-image,{REF_LOOP['model_id']},{FLUX}"
    async with connect(Settings(api_token=TOKEN, base_url=hostile_api.base_url, models=models)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "blackforestlabs_flux_2_flash_text_to_image" in names and not any("mallory" in n for n in names)
    assert (
        f"{DEEP_SCHEMA['model_id']} is left out" in caplog.text and f"{REF_LOOP['model_id']} is left out" in caplog.text
    )


async def test_a_ref_loop_is_explained_and_refs_without_one_are_followed(
    client: Client, hostile_api: Simulator
) -> None:
    loop = await client.call_tool("run_model", {"model_id": REF_LOOP["model_id"], "input": {"prompt": "x"}})
    assert loop.is_error and "$ref" in text_of(loop) and "internal error" not in text_of(loop)
    described = structured(await client.call_tool("describe_model", {"model_id": SHARED_PARTS["model_id"]}))
    assert described["runnable"] and described["input_schema"]["properties"]["negative_prompt"]["maxLength"] == 10
    too_long = await client.call_tool(
        "run_model", {"model_id": SHARED_PARTS["model_id"], "input": {"prompt": "far too long a prompt"}}
    )
    assert too_long.is_error and "prompt: 21 characters is too long" in text_of(too_long)
    assert hostile_api.calls.submits == []


# ------------------------------------------------------------------ 6. size

TOOLS_LIST_BUDGET = 16 * 1024  # the built-in and bundled tools (tests/mcp/test_app.py)
CATALOG_TOOL_BUDGET = 3 * 1024  # each RUNCOMFY_MODELS tool on top


async def test_runcomfy_models_tools_keep_the_tools_list_budget(
    connect: ClientFactory, hostile_api: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """One catalog model's descriptions put 227 KB into every turn's tools/list: each tool now has a budget."""
    models = f"{WORDY['model_id']},{FLUX},kling/kling-v2-1/pro/image-to-video"
    async with connect(Settings(api_token=TOKEN, base_url=hostile_api.base_url, models=models)) as client:
        listing = await client.list_tools()
        wordy = next((t for t in listing.tools if t.name == "mallory_wordy_text_to_image"), None)
        size = len(listing.model_dump_json(by_alias=True, exclude_none=True))
        ran = await client.call_tool("run_model", {"model_id": WORDY["model_id"], "input": {"prompt": "hi"}})
    assert size <= TOOLS_LIST_BUDGET + 3 * CATALOG_TOOL_BUDGET, size
    if wordy is not None:  # either it fits, shortened, or it is left out with the reason
        assert len(wordy.model_dump_json(by_alias=True, exclude_none=True)) <= CATALOG_TOOL_BUDGET
    else:
        assert f"{WORDY['model_id']} is left out" in caplog.text and "tools/list" in caplog.text
    assert not ran.is_error, text_of(ran)  # still runnable through run_model


async def test_every_text_from_the_catalog_is_capped(client: Client, hostile_api: Simulator) -> None:
    found = await client.call_tool("find_models", {"query": "wordy"})
    described = await client.call_tool("describe_model", {"model_id": WORDY["model_id"]})
    missing = await client.call_tool("find_models", {"category": "text-to-smell"})
    for result, most in ((found, 4_000), (described, 64 * 1024), (missing, 8_000)):
        assert not result.is_error, text_of(result)
        assert len(result.model_dump_json()) <= most, (len(result.model_dump_json()), text_of(result)[:300])
    model = structured(described)
    assert model["runnable"] and len(model["name"]) <= 120 and len(model["description"]) <= 2_000
    knob = model["input_schema"]["properties"]["knob_1"]
    assert len(knob["description"]) <= 1_000 and len(str(knob.get("examples", ""))) <= 1_000
    assert "enum" not in model["input_schema"]["properties"]["style"]  # 5,000 choices: RunComfy checks them
