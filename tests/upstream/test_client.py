"""RunComfyClient on its own, through httpx.MockTransport: paths, parameters, tolerance, the error map."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runcomfy_mcp.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    InvalidArgumentsError,
    MissingTokenError,
    RequestNotFoundError,
    SubmitOutcomeUnknownError,
    UnknownModelError,
)
from runcomfy_mcp.upstream.client import RunComfyClient
from runcomfy_mcp.upstream.redaction import Redactor
from runcomfy_mcp.upstream.retries import RetryPolicy

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, wait_initial_s=0, wait_max_s=0, retry_after_max_s=30, deadline_s=5)


def client_for(handler: Callable[[httpx.Request], httpx.Response], token: str | None = "tok-123") -> RunComfyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RunComfyClient(http, base_url="https://api.test", token=token, redactor=Redactor(token), retry=FAST)


async def test_the_listing_sends_its_parameters_and_the_token_when_there_is_one() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"models": [{"model_id": "a/b"}], "total": 1})

    page = await client_for(handler).list_models(search="kling", include_schema=True, limit=500, offset=500)
    assert page.models == [{"model_id": "a/b"}] and page.total == 1
    params = dict(seen[0].url.params)
    assert params == {"search": "kling", "include_schema": "true", "limit": "500", "offset": "500"}
    assert seen[0].url.path == "/v1/models" and seen[0].headers["authorization"] == "Bearer tok-123"


async def test_without_a_token_the_catalog_is_asked_anonymously_but_a_job_is_not_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"model_id": "a/b"}]})  # another shape of the same page

    client = client_for(handler, token=None)
    page = await client.list_models()
    assert page.models == [{"model_id": "a/b"}] and "authorization" not in seen[0].headers
    with pytest.raises(MissingTokenError):
        await client.submit("a/b", {})
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"categories": ["text-to-image", {"name": "lip-sync"}, {"slug": "x"}, 3]}, ["text-to-image", "lip-sync", "x"])],
)
async def test_categories_are_read_tolerantly(body: dict[str, Any], expected: list[str]) -> None:
    client = client_for(lambda request: httpx.Response(200, json=body))
    assert await client.model_categories() == expected


async def test_one_model_goes_to_its_path_and_a_hostile_id_goes_nowhere() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        if "missing" in request.url.path:
            return httpx.Response(400, json={"error_code": "400001", "error_message": "Model not found"})
        return httpx.Response(200, json={"model_id": "v/m/task", "input_schema": {}})

    client = client_for(handler)
    assert (await client.model("v/m/task"))["model_id"] == "v/m/task"
    with pytest.raises(UnknownModelError):
        await client.model("v/missing")
    for hostile in ("../requests/x/cancel", "v/../../x", "v/m?x=1", "v/m#f", "a"):
        with pytest.raises(InvalidArgumentsError):
            await client.model(hostile)
    assert seen == ["/v1/models/v/m/task", "/v1/models/v/missing"]


async def test_transport_failures_map_to_what_they_mean_for_a_paid_submit() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def cut(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    with pytest.raises(APIConnectionError, match="Nothing was submitted or charged"):
        await client_for(refuse).submit("a/b", {"prompt": "x"})
    with pytest.raises(SubmitOutcomeUnknownError, match="Do NOT submit it again") as outcome:
        await client_for(cut).submit("a/b", {"prompt": "x"})
    assert isinstance(outcome.value.__cause__, httpx.ReadError)  # the cause is kept for the log


async def test_a_safe_request_is_retried_and_says_how_often() -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(APITimeoutError) as failure:
        await client_for(flaky).status("req-1")
    assert calls == 3 and failure.value.attempts == 3
    assert failure.value.shown().endswith("(Tried 3 times.)") and "Tried" not in failure.value.message


@pytest.mark.parametrize(
    ("said", "read"),
    [
        ("canceled", "cancelled"),  # one l, as RunComfy's CLI knows it
        ("Cancelled", "cancelled"),
        ("pending", "in_queue"),
        ("waiting", "in_queue"),
        ("starting", "in_progress"),
        ("processing", "in_progress"),
        ("completed", "completed"),
        ("teleporting", "teleporting"),  # unknown: reported as it is, never guessed
    ],
)
async def test_status_words_of_runcomfys_own_clients_are_read_as_ours(said: str, read: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cancel"):
            return httpx.Response(202, json={"request_id": "req-1", "status": said, "outcome": said})
        return httpx.Response(200, json={"request_id": "req-1", "status": said})

    client = client_for(handler)
    assert (await client.status("req-1")).status == read
    assert (await client.result("req-1")).status == read
    cancelled = await client.cancel("req-1")
    assert cancelled.status == read and cancelled.outcome == read


async def test_a_refused_submit_names_the_model_or_the_input() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "gone" in request.url.path or request.method == "GET":
            return httpx.Response(404, json={"detail": "Not Found"})
        detail = [{"loc": ["body", "duration"], "msg": "must be 5 or 10", "type": "value_error"}, "and more"]
        return httpx.Response(422, json={"detail": detail})

    client = client_for(handler)
    with pytest.raises(UnknownModelError, match=r"no such model \(HTTP 404\): it does not know the model v/gone"):
        await client.submit("v/gone", {})
    with pytest.raises(BadRequestError) as refused:
        await client.submit("v/here", {"duration": 7})
    assert "refused the input (HTTP 422). RunComfy said: duration: must be 5 or 10; and more." in refused.value.message
    assert "describe_model v/here" in refused.value.message
    with pytest.raises(RequestNotFoundError):  # a 404 anywhere else is still about the request
        await client.status("req-1")


async def test_an_answer_nested_past_json_s_own_limit_keeps_everything_else() -> None:
    deep = "[" * 3000 + "]" * 3000
    entries = ['{"model_id": "a/b"}', f'{{"model_id": "x/y", "input_schema": {deep}}}', '{"model_id": "c/d"}']
    body = f'{{"models": [{", ".join(entries)}]}}'
    client = client_for(lambda request: httpx.Response(200, text=body, headers={"content-type": "application/json"}))
    page = await client.list_models()
    assert [m["model_id"] for m in page.models] == ["a/b", "x/y", "c/d"]
    assert "nested too deep" in json.dumps(page.models[1])  # the part past the limit is a marker, not a crash
