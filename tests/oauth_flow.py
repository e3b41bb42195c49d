"""OAuth as a connector goes through it: the server started with --auth oauth, a person's browser on the consent
page (played by httpx: it reads the form, keeps the cookie, sends the answer), and the SDK's own OAuth client."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import anyio.abc
import httpx
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from http_servers import free_port
from images import make_image
from mcp import Client
from runcomfy_mcp.cli import transport_security
from runcomfy_mcp.hosting import http_app
from runcomfy_mcp.http_server import guard_sessions, transport_options
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.mcp.callers import CallerIdentity
from runcomfy_mcp.media.guarded_http import Resolver
from runcomfy_mcp.runtime import open_runtime
from runcomfy_mcp.sandbox.serving import serve_on_loopback, wait_for_port
from runcomfy_mcp.settings import Settings

SCRIPT = Path(sys.executable).with_name("runcomfy-mcp")
KEY = "ErNpgKfKX28jOyQYmcAkPDgO2UGI6SRTvmKJXkPULRE="  # a Fernet key for the tests' servers
REDIRECT_URI = "http://127.0.0.1:48123/callback"  # never listened on: the browser stops at the redirect

# The paid job a signed-in app runs; its first frame inline, so nothing is fetched.
LITE = "seedance_1_0_lite_image_to_video"
LITE_ARGS = {
    "prompt": "a cat",
    "first_frame_image_url": "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode(),
}


@dataclass
class OAuthServer:
    base: str  # the public origin, also the issuer
    process: anyio.abc.Process | None  # None: served from the test's own process

    @property
    def mcp(self) -> str:
        return f"{self.base}/mcp"


@asynccontextmanager
async def oauth_server(
    api_url: str | None,
    tmp_path: Path,
    *flags: str,
    log: IO[bytes] | None = None,
    port: int | None = None,
    **env: str,
) -> AsyncIterator[OAuthServer]:
    """`runcomfy-mcp --transport http --auth oauth` on loopback, without a RunComfy token of its own."""
    port = port or free_port()
    environment = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_API_TOKEN"}
    environment.update({"RUNCOMFY_OAUTH_KEY": KEY, **env})
    environment.setdefault("RUNCOMFY_DATA_DIR", str(tmp_path / "data"))
    if api_url is not None:
        environment["RUNCOMFY_BASE_URL"] = api_url
    command = [str(SCRIPT), "--transport", "http", "--auth", "oauth", "--host", "127.0.0.1", "--port", str(port)]
    process = await anyio.open_process([*command, *flags], env=environment, stdout=None, stderr=log)
    try:
        await wait_for_port(port, timeout_s=30)
        yield OAuthServer(f"http://127.0.0.1:{port}", process)
    finally:
        if process.returncode is None:
            process.terminate()
            with anyio.fail_after(10):
                await process.wait()


class _Later:
    """An ASGI app given once its own URL is known (the public URL is part of the app)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@asynccontextmanager
async def in_process(
    api_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    **settings: Any,
) -> AsyncIterator[OAuthServer]:
    """The same app as `runcomfy-mcp --transport http --auth oauth`, served from this process (quicker to start);
    `transport` stands in for the guarded network that fetches client metadata documents, `resolver` for DNS."""
    later = _Later()
    async with serve_on_loopback(later) as base:
        configured = Settings(base_url=api_url, auth="oauth", oauth_key=KEY, **settings)  # type: ignore[arg-type]
        async with open_runtime(configured, serving="http", media_transport=transport, resolver=resolver) as runtime:
            identity = CallerIdentity(http=True, oauth=True)
            server = build_server(runtime.tools, identity, consent_keys=configured.consent_keys())
            flags = type("Flags", (), {"host": "127.0.0.1", "allowed_host": []})()
            later.app = http_app(
                runtime,
                server,
                oauth_url=base,
                host="127.0.0.1",
                transport_security=transport_security(flags, base),  # type: ignore[arg-type]
                stateless=False,
                limits=transport_options(configured, stateless=False),
            )
            guard_sessions(server, configured, identity, stateless=False)
            async with later.app.router.lifespan_context(later.app):
                yield OAuthServer(base, None)


@dataclass
class ConsentForm:
    page: httpx.Response
    request: str
    csrf: str
    cookies: dict[str, str]


async def open_consent(browser: httpx.AsyncClient, authorization_url: str) -> ConsentForm:
    """Follow the authorization URL to the consent page and read its form."""
    sent = await browser.get(authorization_url)
    assert sent.status_code == 302, sent.text
    return read_consent(await browser.get(sent.headers["location"]))


def read_consent(page: httpx.Response) -> ConsentForm:
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    return ConsentForm(page, fields["request"], fields["csrf"], dict(page.cookies))


async def answer_consent(
    base: str, form: ConsentForm, token: str, *, decision: str = "allow", origin: str | None = None, **overrides: Any
) -> httpx.Response:
    """Send the form as a browser would: its fields (`overrides` change or, with None, drop one), the cookie the page
    set (`form.cookies`), and the page's origin (`base`, unless a proxy's `origin` is what the browser saw)."""
    data = {"request": form.request, "csrf": form.csrf, "runcomfy_token": token, "decision": decision}
    data.update({k: v for k, v in overrides.items() if v is not None})
    for name in [k for k, v in overrides.items() if v is None]:
        data.pop(name, None)
    async with httpx.AsyncClient(cookies=form.cookies) as sender:
        return await sender.post(f"{base}/consent", data=data, headers={"Origin": origin or base})


async def consent(browser: httpx.AsyncClient, base: str, authorization_url: str, token: str) -> str:
    """The whole browser part: the redirect back to the app (its Location)."""
    form = await open_consent(browser, authorization_url)
    answer = await answer_consent(base, form, token)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


@dataclass
class MemoryStorage:
    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Connector:
    """The SDK's OAuth client with a person who answers the consent page with `token`."""

    server: OAuthServer
    token: str
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    authorization_urls: list[str] = field(default_factory=list)
    client_metadata_url: str | None = None
    redirects: list[str] = field(default_factory=list)  # where the person's browser was sent back to the app
    exchanges: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status) the client saw

    def provider(self) -> OAuthClientProvider:
        metadata = OAuthClientMetadata(
            client_name="Test connector",
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        )

        async def redirect(url: str) -> None:
            self.authorization_urls.append(url)

        async def callback() -> AuthorizationCodeResult:
            async with httpx.AsyncClient() as browser:
                location = await consent(browser, self.server.base, self.authorization_urls[-1], self.token)
            self.redirects.append(location)
            query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            assert location.startswith(REDIRECT_URI + "?"), location
            return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

        return OAuthClientProvider(
            self.server.mcp,
            metadata,
            self.storage,
            redirect_handler=redirect,
            callback_handler=callback,
            client_metadata_url=self.client_metadata_url,
        )

    def client(self, mode: str = "auto") -> Client:
        async def seen(response: httpx2.Response) -> None:
            self.exchanges.append((response.request.method, response.request.url.path, response.status_code))

        http = httpx2.AsyncClient(auth=self.provider(), event_hooks={"response": [seen]})
        return Client(streamable_http_client(self.server.mcp, http_client=http), mode=mode)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


async def register(http: httpx.AsyncClient, base: str, redirect_uri: str = REDIRECT_URI, **extra: Any) -> str:
    """Dynamic registration of a public client; its client_id."""
    body = {"client_name": "Hand-driven app", "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"}
    answer = await http.post(f"{base}/register", json={**body, **extra})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["client_id"])


def authorization_url(base: str, client_id: str, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        "resource": f"{base}/mcp",
        **extra,
    }
    return f"{base}/authorize?{urlencode(params)}"


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def code_for(http: httpx.AsyncClient, base: str, client_id: str, token: str) -> tuple[str, str]:
    """A person allows `client_id` with `token`: the code and its PKCE verifier."""
    verifier, challenge = pkce()
    location = await consent(http, base, authorization_url(base, client_id, challenge), token)
    return query_of(location)["code"], verifier


async def exchange(
    http: httpx.AsyncClient, base: str, client_id: str, code: str, verifier: str | None, **extra: str
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": REDIRECT_URI}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    return await http.post(f"{base}/token", data=data)


async def tokens_for(http: httpx.AsyncClient, base: str, token: str) -> tuple[str, dict[str, Any]]:
    """Register, consent, exchange: the client_id and the token response."""
    client_id = await register(http, base)
    code, verifier = await code_for(http, base, client_id, token)
    answer = await exchange(http, base, client_id, code, verifier, resource=f"{base}/mcp")
    assert answer.status_code == 200, answer.text
    return client_id, answer.json()


async def mcp_status(http: httpx.AsyncClient, base: str, access_token: str) -> int:
    """The status of a tools/list sent with this bearer token (2026-07-28 style: no session needed)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"}
    answer = await http.post(f"{base}/mcp", json=body, headers=headers)
    return answer.status_code


def bearer_client(url: str, access_token: str, mode: str = "auto") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {access_token}"})
    return Client(streamable_http_client(url, http_client=http), mode=mode)
