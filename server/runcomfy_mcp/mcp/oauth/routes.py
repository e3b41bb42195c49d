"""The streamable HTTP app as an OAuth 2.1 protected resource that is also its own authorization server.

Built by the SDK (`Server.streamable_http_app` with `AuthSettings`, a token verifier and the provider: bearer
middleware, 401 with `WWW-Authenticate: Bearer resource_metadata=…`, RFC 8414 and RFC 9728 metadata, the
authorize, token, register and revoke handlers). Routes placed in front of the SDK's own change four things:
- the authorization server metadata also says `authorization_response_iss_parameter_supported` (RFC 9207),
  `client_id_metadata_document_supported`, and that public clients (`none`) may use the token and revoke
  endpoints;
- the protected resource metadata names the server, and is served at the bare well-known path too;
- a public client may revoke with its client_id alone (RFC 7009 §2.1): the SDK's handler requires a
  `client_secret` field and answers 400 without one;
- an error the SDK's authorize handler sends back to the app carries `iss` as well.
One thing in front of them all: registrations and sign-ins begun are bounded per address (`sign_in_limits`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.provider import ProviderTokenVerifier, construct_redirect_uri
from mcp.server.auth.routes import (
    AUTHORIZATION_PATH,
    REVOCATION_PATH,
    build_metadata,
    build_resource_metadata_url,
    cors_middleware,
    create_protected_resource_routes,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.lowlevel.server import Server
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    RequestBodyLimitMiddleware,
    TransportSecuritySettings,
)
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runcomfy_mcp.mcp.oauth.provider import GrantProvider
from runcomfy_mcp.mcp.oauth.sign_in_limits import SignInLimits

MCP_PATH = "/mcp"
PUBLIC_CLIENT_METHODS = ["none", "client_secret_post", "client_secret_basic"]


def oauth_app(
    server: Server[Any],
    provider: GrantProvider,
    pages: list[Route],
    *,
    public_url: str,
    host: str,
    transport_security: TransportSecuritySettings,
    stateless: bool,
    limits: dict[str, Any],
) -> Starlette:
    # From strings, so the issuer stays a bare origin without a trailing slash (RFC 8414 §3.3 compares exactly).
    auth = AuthSettings.model_validate(
        {
            "issuer_url": public_url,
            "resource_server_url": provider.resource,
            "validate_token_resource": True,  # a token bound to another resource is refused (RFC 8707)
            "client_registration_options": ClientRegistrationOptions(enabled=True),
            "revocation_options": RevocationOptions(enabled=True),
        }
    )
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=host,
        transport_security=transport_security,
        stateless_http=stateless,
        auth=auth,
        token_verifier=ProviderTokenVerifier(provider),  # type: ignore[arg-type]
        auth_server_provider=provider,
        custom_starlette_routes=pages,  # the consent page, and a person's own connections
        **limits,  # the body cap and session limits of the shared port
    )
    assert auth.resource_server_url is not None
    app.router.routes[0:0] = _refinements(provider, auth, auth.issuer_url, auth.resource_server_url)
    app.add_middleware(SignInLimits)  # registrations and sign-ins per address: each stores a row
    return app


def _refinements(
    provider: GrantProvider, auth: AuthSettings, issuer: AnyHttpUrl, resource: AnyHttpUrl
) -> list[BaseRoute]:
    assert auth.client_registration_options is not None and auth.revocation_options is not None
    metadata = build_metadata(issuer, None, auth.client_registration_options, auth.revocation_options)
    metadata.authorization_response_iss_parameter_supported = True
    metadata.client_id_metadata_document_supported = provider.clients.accepts_metadata_documents
    metadata.token_endpoint_auth_methods_supported = PUBLIC_CLIENT_METHODS
    metadata.revocation_endpoint_auth_methods_supported = PUBLIC_CLIENT_METHODS
    resource_routes = create_protected_resource_routes(
        resource, [issuer], resource_name="RunComfy models (runcomfy-mcp)"
    )
    suffixed = resource_routes[0]
    assert isinstance(suffixed, Route)
    bare = "/.well-known/oauth-protected-resource"
    routes: list[BaseRoute] = [
        Route(
            "/.well-known/oauth-authorization-server",
            endpoint=cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        *resource_routes,
        Route(
            AUTHORIZATION_PATH,
            endpoint=_IssuerOnErrors(
                RequestBodyLimitMiddleware(
                    request_response(AuthorizationHandler(provider).handle), DEFAULT_MAX_REQUEST_BODY_SIZE
                ),
                str(issuer),
            ),
            methods=["GET", "POST"],
        ),
        Route(
            REVOCATION_PATH,
            endpoint=CORSMiddleware(
                RequestBodyLimitMiddleware(
                    request_response(PublicClientRevocation(provider, ClientAuthenticator(provider)).handle),
                    DEFAULT_MAX_REQUEST_BODY_SIZE,
                ),
                allow_origins="*",
                allow_methods=["POST", "OPTIONS"],
                allow_headers=[MCP_PROTOCOL_VERSION_HEADER],
            ),
            methods=["POST", "OPTIONS"],
        ),
    ]
    if suffixed.path != bare:
        routes.append(Route(bare, endpoint=suffixed.endpoint, methods=["GET", "OPTIONS"]))
    assert urlsplit(str(build_resource_metadata_url(resource))).path == suffixed.path
    return routes


class PublicClientRevocation(RevocationHandler):
    """The SDK's revocation handler, given the empty `client_secret` its request model requires of every client.

    The client is still authenticated by the SDK's ClientAuthenticator: a client registered with a secret must
    send it, and an empty one is refused; a public client (`none`) is known by its client_id, as RFC 7009 allows.
    """

    async def handle(self, request: Request) -> Response:
        body = await request.body()  # bounded by the RequestBodyLimitMiddleware around this handler
        fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        if any(name == "client_secret" for name, _ in fields):
            return await super().handle(request)
        completed = urlencode([*fields, ("client_secret", "")]).encode()
        headers = [(k, v) for k, v in request.scope["headers"] if k not in (b"content-length", b"content-type")]
        headers += [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(completed)).encode()),
        ]
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": completed, "more_body": False}

        return await super().handle(Request({**request.scope, "headers": headers}, receive))


class _IssuerOnErrors:
    """Adds `iss` to the error redirects of the SDK's authorize handler (RFC 9207 §2: every authorization response)."""

    def __init__(self, app: ASGIApp, issuer: str) -> None:
        self._app = app
        self._issuer = issuer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_issuer(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (302, 303):
                message = {**message, "headers": [self._with_issuer(k, v) for k, v in message["headers"]]}
            await send(message)

        await self._app(scope, receive, send_with_issuer)

    def _with_issuer(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if name.lower() != b"location":
            return name, value
        location = value.decode("latin-1")
        query = dict(parse_qsl(urlsplit(location).query))
        if "error" not in query or "iss" in query:
            return name, value
        return name, construct_redirect_uri(location, iss=self._issuer).encode("latin-1")
