"""Apps named by a Client ID Metadata Document URL (the current spec's preferred way): no registration, the document
fetched from the app's own host, and only when it follows the rules."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conftest import TOKEN
from helpers import structured
from oauth_flow import REDIRECT_URI, Connector, authorization_url, in_process, pkce
from runcomfy_mcp.sandbox.simulator import Simulator

pytestmark = pytest.mark.anyio

DOCUMENT_URL = "https://app.example/oauth/client.json"


def document(**changes: Any) -> dict[str, Any]:
    base = {
        "client_id": DOCUMENT_URL,
        "client_name": "Example Connector",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def app_host(served: dict[str, Any] | bytes, fetched: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        if str(request.url) != DOCUMENT_URL:
            return httpx.Response(404)
        body = served if isinstance(served, bytes) else json.dumps(served).encode()
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    return httpx.MockTransport(handle)


async def test_a_connector_named_by_its_metadata_document_signs_in_without_registering(
    api_url: str, simulator: Simulator
) -> None:
    fetched: list[str] = []
    async with in_process(api_url, transport=app_host(document(), fetched)) as server:
        connector = Connector(server, TOKEN, client_metadata_url=DOCUMENT_URL)
        async with connector.client() as client:
            listed = structured(await client.call_tool("list_jobs", {}))
        async with httpx.AsyncClient() as http:
            url = authorization_url(server.base, DOCUMENT_URL, pkce()[1])
            page = await http.get((await http.get(url)).headers["location"])
    assert listed == {"jobs": []}
    assert connector.storage.client_info is not None and connector.storage.client_info.client_id == DOCUMENT_URL
    assert "Example Connector" in page.text and "Published at app.example" in page.text
    assert fetched and set(fetched) == {DOCUMENT_URL}  # fetched, and kept for a while rather than at every step
    assert len(fetched) <= 2


@pytest.mark.parametrize(
    "served",
    [
        document(client_id="https://app.example/someone-else.json"),
        document(client_secret="s3cret"),
        document(token_endpoint_auth_method="client_secret_basic"),
        document(redirect_uris=["http://evil.example/cb"]),
        document(redirect_uris=None),
        b"{" * 10_000,  # over the size cap
        b"not json",
    ],
    ids=["other-client-id", "secret", "auth-method", "http-redirect", "no-redirects", "too-large", "not-json"],
)
async def test_a_document_that_breaks_the_rules_names_no_app(api_url: str, served: dict[str, Any] | bytes) -> None:
    async with in_process(api_url, transport=app_host(served, [])) as server, httpx.AsyncClient() as http:
        answer = await http.get(authorization_url(server.base, DOCUMENT_URL, pkce()[1]))
    assert answer.status_code == 400 and "not found" in answer.json()["error_description"]
    assert "location" not in answer.headers


async def test_a_document_on_a_private_address_is_never_fetched(api_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def to_this_machine(host: str) -> list[str]:
        return ["127.0.0.1"]

    async with in_process(api_url, resolver=to_this_machine) as server, httpx.AsyncClient() as http:
        answer = await http.get(authorization_url(server.base, DOCUMENT_URL, pkce()[1]))
    assert answer.status_code == 400 and "not found" in answer.json()["error_description"]
    assert "private or reserved network address (127.0.0.1)" in caplog.text  # refused before any connection
