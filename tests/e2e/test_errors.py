"""Every failure an assistant can act on comes back as an isError result with one readable paragraph."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from conftest import TOKEN, ClientFactory
from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from runcomfy_mcp.sandbox.simulator import Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def api_settings() -> Settings:
    """Made per test, after the environment fixture has set fast retries."""
    return Settings(api_token=TOKEN, base_url="https://api.test")


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


CASES = [
    # (handler, words the assistant must read)
    (
        answer(401, {"error_code": "400004", "error_message": "token revoked"}),
        ["rejected the API token", "RUNCOMFY_API_TOKEN"],
    ),
    (answer(403, {"detail": "forbidden"}), ["rejected the API token"]),
    (answer(402, {"message": "pay up"}), ["insufficient balance", "Top up"]),
    (answer(400, {"error_code": "400002", "error_message": "Insufficient balance"}), ["insufficient balance"]),
    (answer(200, {"error_code": "400002", "error_message": "Insufficient balance"}), ["insufficient balance"]),
    (answer(400, {"error_code": "400001", "error_message": "no such model"}), ["no such model", "find_models"]),
    (answer(404, {"error_code": "404001", "error_message": "expired"}), ["no such request", "expired"]),
    (answer(403, {"error_code": "403001", "error_message": "not yours"}), ["another RunComfy account"]),
    (answer(429, {"error": "slow down"}, {"Retry-After": "12"}), ["rate-limiting", "wait 12 s"]),
    (answer(503, {"error": "maintenance"}), ["having trouble", "try again"]),
    (answer(400, {"error_message": "prompt too spicy"}), ["refused the request", "prompt too spicy"]),
    (lambda r: httpx.Response(502, text="<html>Bad gateway</html>"), ["having trouble"]),
    (
        lambda r: httpx.Response(200, text="<html>hello</html>", headers={"content-type": "text/html"}),
        ["instead of JSON"],
    ),
    (answer(200, {"unexpected": True}), ["without the expected fields"]),
]


@pytest.mark.parametrize(("handler", "words"), CASES)
async def test_tracking_call_errors_read_well(connect: ClientFactory, handler: Handler, words: list[str]) -> None:
    async with connect(api_settings(), httpx.MockTransport(handler)) as client:
        for tool in ("get_status", "get_result", "wait_for_result", "cancel"):
            result = await client.call_tool(tool, {"request_id": "req-1"})
            assert result.is_error
            text = text_of(result)
            for word in words:
                assert word in text, text
            assert "Traceback" not in text


async def test_submit_errors_read_well_and_say_nothing_was_charged(connect: ClientFactory) -> None:
    handler = answer(400, {"error_code": "400002", "error_message": "Insufficient balance"})
    async with connect(api_settings(), httpx.MockTransport(handler)) as client:
        result = await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS)
    assert result.is_error and "Nothing was charged" in text_of(result)


async def test_submit_5xx_says_the_job_may_exist_and_is_not_resent(connect: ClientFactory) -> None:
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
        return httpx.Response(500, json={"error": "boom"})

    async with connect(api_settings(), httpx.MockTransport(handler)) as client:
        result = await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS)
    assert result.is_error
    assert "may or may not" in text_of(result) and "Do NOT submit it again" in text_of(result)
    assert len(posts) == 1


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.ConnectError("refused"), ["could not be reached", "Nothing was submitted"]),
        (httpx.ReadTimeout("slow"), ["may or may not exist", "Do NOT submit it again"]),
        (httpx.RemoteProtocolError("reset"), ["may or may not exist"]),
    ],
)
async def test_submit_transport_failures(connect: ClientFactory, exc: Exception, words: list[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with connect(api_settings(), httpx.MockTransport(handler)) as client:
        result = await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS)
    assert result.is_error
    for word in words:
        assert word in text_of(result)


async def test_upstream_down_on_status(connect: ClientFactory) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with connect(api_settings(), httpx.MockTransport(handler)) as client:
        result = await client.call_tool("get_status", {"request_id": "req-1"})
    assert result.is_error and "could not be reached" in text_of(result)


async def test_without_a_token_tools_list_and_calls_explain(connect: ClientFactory) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    async with connect(Settings(base_url="https://api.test"), httpx.MockTransport(handler)) as client:
        assert len((await client.list_tools()).tools) == 15
        for tool, args in [
            ("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS),
            ("get_status", {"request_id": "req-1"}),
            ("get_result", {"request_id": "req-1"}),
            ("cancel", {"request_id": "req-1"}),
        ]:
            result = await client.call_tool(tool, args)
            assert result.is_error and "RUNCOMFY_API_TOKEN" in text_of(result)
    assert calls == []


async def test_token_never_leaks_even_when_echoed(connect: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(401, json={"error_message": f"bad header {auth}", "detail": TOKEN})

    caplog.set_level(logging.DEBUG)
    async with connect(api_settings(), httpx.MockTransport(echo)) as client:
        results = [
            await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS),
            await client.call_tool("get_status", {"request_id": "req-1"}),
        ]
    for result in results:
        dumped = json.dumps(result.model_dump(mode="json"))
        assert TOKEN not in dumped
        assert "[redacted]" in text_of(result)
    assert TOKEN not in caplog.text


async def test_bearer_token_sent_only_to_the_api(connect: ClientFactory) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"request_id": "req-9", "status": "in_queue", "queue_position": 1})

    async with connect(api_settings(), httpx.MockTransport(handler)) as client:
        await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS)
        await client.call_tool("get_status", {"request_id": "req-9"})
    jobs = [r for r in seen if r.url.path.startswith(("/v1/requests/", "/v1/models/")) and r.method != "GET"]
    jobs += [r for r in seen if r.url.path.startswith("/v1/requests/")]
    assert [str(r.url) for r in jobs] == [
        "https://api.test/v1/models/bytedance/seedance-1-0/lite/image-to-video",
        "https://api.test/v1/requests/req-9/status",
    ]
    # the catalog (for the price) and the balance are asked of the same API: the token goes nowhere else
    assert {r.url.host for r in seen} == {"api.test"}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)
    assert json.loads(jobs[0].content) == SEEDANCE_LITE_ARGS


async def test_token_echoed_in_a_failed_jobs_reason_is_redacted(connect: ClientFactory) -> None:
    def failed(request: httpx.Request) -> httpx.Response:
        reason = f"upstream rejected header {request.headers['authorization']}"
        return httpx.Response(200, json={"request_id": "req-1", "status": "failed", "error": {"message": reason}})

    async with connect(api_settings(), httpx.MockTransport(failed)) as client:
        result = await client.call_tool("get_result", {"request_id": "req-1"})
    assert result.is_error and "upstream rejected header" in text_of(result)
    assert TOKEN not in json.dumps(result.model_dump(mode="json"))


# ------------------------------------------------------------------ refusals of a submit, from the simulator

LITE = "bytedance/seedance-1-0/lite/image-to-video"


async def test_a_model_runcomfy_does_not_have_is_named_with_what_to_do(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    del simulator.catalog[LITE]  # withdrawn since the spec was written
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        result = await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS)
        jobs = structured(await client.call_tool("list_jobs", {}))["jobs"]
    text = text_of(result)
    assert result.is_error and "no such model (HTTP 404)" in text and LITE in text
    assert "Nothing was charged" in text and "find_models" in text and "no such request" not in text
    assert jobs == []  # a refused submit leaves no job behind


async def test_an_input_runcomfy_refuses_carries_runcomfys_own_detail(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    arguments = {**SEEDANCE_LITE_ARGS, "prompt": "a cat [refuse]"}
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        result = await client.call_tool("seedance_1_0_lite_image_to_video", arguments)
    text = text_of(result)
    assert result.is_error and "refused the input (HTTP 422)" in text
    assert "prompt: flagged by the content filter" in text and f"describe_model {LITE}" in text
    assert "Nothing was charged" in text and simulator.calls.submits == []


async def test_insufficient_balance_says_so_with_the_balance(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    # A unit this server cannot estimate, so only RunComfy can tell the job is too dear for the balance.
    simulator.catalog[LITE].update(base_price_usd=0.5, price_unit="gpu_second")
    simulator.balance_usd = 0.03
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        result = await client.call_tool("seedance_1_0_lite_image_to_video", SEEDANCE_LITE_ARGS)
    text = text_of(result)
    assert result.is_error and "insufficient balance (HTTP 402" in text and "Top up" in text
    assert "The balance is $0.03." in text and simulator.calls.submits == []
