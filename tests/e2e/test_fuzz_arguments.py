"""Random argument objects thrown at every model tool: a submission or a field-named error, never a crash."""

from __future__ import annotations

import base64
import re
from typing import Any

import anyio
import httpx
import mcp_types as types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TOKEN
from helpers import text_of
from images import FakeImageHost, fake_resolver, image_url, make_image
from mcp import Client
from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.settings import Settings

SPECS = {s.tool_name: s for s in load_specs()}
GOOD_IMAGES = [
    image_url(640, 480),
    image_url(1280, 720, "jpg"),
    "data:image/png;base64," + base64.b64encode(make_image(512, 512)).decode(),
]
BAD_IMAGES = [image_url(100, 100), image_url(3000, 900, "webp"), "https://images.example.com/page.html", "not a url"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=False), st.text(max_size=30)
)
images = st.sampled_from(GOOD_IMAGES + BAD_IMAGES)
values = st.one_of(json_scalars, images, st.lists(st.one_of(images, json_scalars), max_size=5))


@st.composite
def argument_objects(draw: st.DrawFn, tool: str) -> dict[str, Any]:
    properties = SPECS[tool].properties
    names = draw(st.lists(st.sampled_from([*properties, "extra", "Prompt"]), unique=True, max_size=len(properties)))
    args: dict[str, Any] = {}
    for name in names:
        prop = properties.get(name, {})
        choices = [values]
        if "enum" in prop:
            choices.append(st.sampled_from(prop["enum"]))
        if prop.get("type") == "array":
            choices.append(st.lists(images, min_size=1, max_size=5))
        args[name] = draw(st.one_of(*choices))
    return args


calls = st.sampled_from(sorted(SPECS)).flatmap(lambda tool: st.tuples(st.just(tool), argument_objects(tool)))


async def call(tool: str, arguments: dict[str, Any]) -> tuple[types.CallToolResult, int]:
    posts: list[httpx.Request] = []

    def accept_everything(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(200, json={"request_id": "req-fuzz", "status_url": "x", "result_url": "y"})

    async with (
        open_runtime(
            Settings(api_token=TOKEN, base_url="https://api.test"),
            transport=httpx.MockTransport(accept_everything),
            media_transport=FakeImageHost().transport(),
            resolver=fake_resolver,
        ) as runtime,
        Client(build_server(runtime.tools)) as client,
    ):
        return await client.call_tool(tool, arguments), len(posts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
def test_random_arguments_give_a_submission_or_a_field_named_error(call_args: tuple[str, dict[str, Any]]) -> None:
    tool, arguments = call_args
    result, posts = anyio.run(call, tool, arguments)  # an MCPError (JSON-RPC error) would raise here
    text = text_of(result)
    assert posts == (0 if result.is_error else 1)
    assert "Traceback" not in text and "internal error" not in text
    if not result.is_error:
        assert isinstance(result.structured_content, dict) and result.structured_content["request_id"] == "req-fuzz"
        return
    problems = [line[2:] for line in text.splitlines() if line.startswith("- ")]
    assert problems, text
    known = {*SPECS[tool].properties, *arguments, "(arguments)", "(all images)"}
    for problem in problems:
        named = re.split(r"[:\[,]", problem, maxsplit=1)[0]
        assert named in known, problem


TRACKING_TOOLS = ["get_status", "get_result", "wait_for_result", "cancel", "list_jobs", "no_such_tool"]
tracking_values = st.one_of(json_scalars, st.sampled_from(["req-1", "../etc", "a" * 200, "completed"]))
tracking_calls = st.tuples(
    st.sampled_from(TRACKING_TOOLS),
    st.dictionaries(
        st.sampled_from(["request_id", "timeout_s", "download", "include_cost", "status", "limit", "x"]),
        tracking_values,
        max_size=5,
    ),
)


def finished_job(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/status"):
        return httpx.Response(200, json={"request_id": "req-1", "status": "completed"})
    if request.url.path.endswith("/cancel"):
        return httpx.Response(202, json={"request_id": "req-1", "status": "completed", "outcome": "not_cancellable"})
    return httpx.Response(200, json={"request_id": "req-1", "status": "succeeded", "output": {}})


async def call_tracking(tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async with (
        open_runtime(
            Settings(api_token=TOKEN, base_url="https://api.test"), transport=httpx.MockTransport(finished_job)
        ) as runtime,
        Client(build_server(runtime.tools)) as client,
    ):
        return await client.call_tool(tool, arguments)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracking_calls)
def test_random_arguments_to_the_tracking_tools_never_crash(call_args: tuple[str, dict[str, Any]]) -> None:
    tool, arguments = call_args
    result = anyio.run(call_tracking, tool, arguments)  # an MCPError would raise here
    text = text_of(result)
    assert text and "Traceback" not in text and "internal error" not in text
