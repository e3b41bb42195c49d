"""Serving over HTTP: the MCP endpoint with the callers' own RunComfy tokens, or as an OAuth 2.1 protected resource
with its own authorization server and consent page (`--auth oauth`)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from mcp.server.lowlevel.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from runcomfy_mcp.errors import SetupError
from runcomfy_mcp.runtime import Runtime

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_url(configured: str | None, host: str, port: int) -> str:
    """The origin people reach the server at: configured, or this loopback address (which then is the only one)."""
    if configured:
        parts = urlsplit(configured)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            raise SetupError(
                f"--public-url {configured} is plain http: OAuth needs https outside this machine. Put the server "
                "behind a TLS-terminating reverse proxy and give its https URL."
            )
        return configured
    if not is_loopback(host):
        raise SetupError(
            f"--auth oauth on {host} needs --public-url (or RUNCOMFY_PUBLIC_URL): the https origin people reach this "
            "server at, e.g. https://mcp.example.com. It names the server in every token."
        )
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def check_oauth(*, transport: str, shared_token: bool, sandbox: bool, keys: list[str]) -> None:
    if transport != "http":
        raise SetupError("--auth oauth applies to --transport http (stdio serves the one person at this machine)")
    if shared_token:
        raise SetupError(
            "--auth oauth and --shared-token cannot go together: with OAuth every person pays with their own token"
        )
    if not keys and not sandbox:
        raise SetupError(
            "--auth oauth needs RUNCOMFY_OAUTH_KEY, the key that seals people's RunComfy tokens at rest (the same on "
            "every replica). Make one with `runcomfy-mcp oauth-key` and keep it with the server's other secrets."
        )
    from runcomfy_mcp.core.sealing import Sealer, SealingKeyError

    if keys:
        try:
            Sealer(keys)
        except SealingKeyError as exc:
            raise SetupError(f"RUNCOMFY_OAUTH_KEY cannot be used: {exc}") from None


def http_app(
    runtime: Runtime,
    server: Server[Any],
    *,
    oauth_url: str | None,
    host: str,
    transport_security: TransportSecuritySettings,
    stateless: bool,
    limits: dict[str, Any],
) -> Starlette:
    """The streamable HTTP app; with `oauth_url` (the public origin), protected by OAuth. `limits` are the options
    the SDK's transport applies itself (body size, sessions)."""
    if oauth_url is None:
        return server.streamable_http_app(
            host=host, transport_security=transport_security, stateless_http=stateless, **limits
        )
    from runcomfy_mcp.mcp.oauth.clients import ClientDirectory
    from runcomfy_mcp.mcp.oauth.connections_page import ConnectionsPage
    from runcomfy_mcp.mcp.oauth.consent_page import ConsentPage
    from runcomfy_mcp.mcp.oauth.provider import GrantProvider
    from runcomfy_mcp.mcp.oauth.routes import MCP_PATH, oauth_app

    services = runtime.services
    clients = ClientDirectory(services.grants, services.client_documents_http())
    provider = GrantProvider(services.grants, clients, issuer=oauth_url, resource=oauth_url + MCP_PATH)
    pages = [
        *ConsentPage(services.grants, clients, issuer=oauth_url).routes(),
        *ConnectionsPage(services.grants, issuer=oauth_url).routes(),
    ]
    return oauth_app(
        server,
        provider,
        pages,
        public_url=oauth_url,
        host=host,
        transport_security=transport_security,
        stateless=stateless,
        limits=limits,
    )
