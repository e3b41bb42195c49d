"""The apps that may ask for access: registered dynamically (RFC 7591), or named by a Client ID Metadata Document URL.

A metadata document is fetched from a host the app chose, so it is treated like any stranger's URL: public
addresses only (the guarded network), https only, no redirects, a few kilobytes, a few seconds. A document
is kept for a few minutes, so one sign-in does not fetch it at every step.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import InvalidRedirectUriError, InvalidScopeError, OAuthClientInformationFull
from pydantic import AnyUrl, ValidationError

from runcomfy_mcp.core.grants import GrantService
from runcomfy_mcp.domain.grants import (
    MAX_CLIENT_NAME_CHARS,
    MAX_REDIRECT_URIS,
    client_id_url_problem,
    is_client_id_url,
    redirect_uri_matches,
    redirect_uri_problem,
)
from runcomfy_mcp.media.guarded_http import plain_chunks

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 5 * 1024  # the draft's suggestion for a client metadata document
DOCUMENT_DEADLINE_S = 5.0
DOCUMENT_FRESH_S = 300.0
DOCUMENTS_KEPT = 256
MAX_CLIENT_ID_CHARS = 200
MAX_SCOPES = 20


class RegisteredClient(OAuthClientInformationFull):
    """An app as this server knows it: exact redirect URIs, except a loopback one's port (RFC 8252 §7.3)."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is None:
            return super().validate_redirect_uri(None)
        if any(redirect_uri_matches(str(known), str(redirect_uri)) for known in self.redirect_uris or ()):
            return redirect_uri
        raise InvalidRedirectUriError(f"Redirect URI '{redirect_uri}' is not registered for this app")

    def validate_scope(self, requested_scope: str | None) -> list[str] | None:
        # A grant may do what its RunComfy token may, whatever scopes are named: they are kept, never refused.
        if requested_scope is None:
            return None
        scopes = requested_scope.split()
        if len(scopes) > MAX_SCOPES or len(requested_scope) > 1000:
            raise InvalidScopeError(f"At most {MAX_SCOPES} scopes may be asked for")
        return scopes

    @property
    def display_name(self) -> str:
        name = " ".join((self.client_name or "").split())[:MAX_CLIENT_NAME_CHARS]
        return name or "An unnamed app"


class ClientMetadataError(Exception):
    """Why a Client ID Metadata Document cannot be used (logged; the app is then unknown)."""


def registration_problem(client: OAuthClientInformationFull) -> str | None:
    uris = [str(u) for u in client.redirect_uris or ()]
    if not uris:
        return "redirect_uris must name at least one URI"
    if len(uris) > MAX_REDIRECT_URIS:
        return f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered"
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            return f"redirect URI {uri[:200]!r} cannot be used: {problem}"
    return None


class ClientDirectory:
    def __init__(
        self,
        grants: Callable[[], GrantService],
        documents_http: httpx.AsyncClient | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._grants = grants
        self._http = documents_http  # None: Client ID Metadata Documents are not accepted
        self._clock = clock
        self._documents: OrderedDict[str, tuple[float, RegisteredClient]] = OrderedDict()
        self._fetching = anyio.CapacityLimiter(8)  # strangers' slow hosts cannot pile up fetches

    @property
    def accepts_metadata_documents(self) -> bool:
        return self._http is not None

    async def register(self, client: OAuthClientInformationFull) -> None:
        problem = registration_problem(client)
        if problem:
            raise RegistrationError("invalid_redirect_uri", problem)
        if client.client_name and len(client.client_name) > MAX_CLIENT_NAME_CHARS:
            too_long = f"client_name is over {MAX_CLIENT_NAME_CHARS} characters"
            raise RegistrationError("invalid_client_metadata", too_long)
        await self._grants().save_client(client.client_id, client.model_dump(mode="json", exclude_none=True))

    async def get(self, client_id: str) -> RegisteredClient | None:
        if is_client_id_url(client_id):
            try:
                return await self._metadata_document(client_id)
            except ClientMetadataError as exc:
                logger.warning("OAuth: the app %r cannot be used: %s", client_id[:200], exc)
                return None
        if len(client_id) > MAX_CLIENT_ID_CHARS:
            return None
        document = await self._grants().client(client_id)
        if document is None:
            return None
        return RegisteredClient.model_validate(document)

    async def _metadata_document(self, url: str) -> RegisteredClient:
        if self._http is None:
            raise ClientMetadataError("this server does not accept Client ID Metadata Documents")
        problem = client_id_url_problem(url)
        if problem:
            raise ClientMetadataError(f"its client_id URL is not usable: {problem}")
        kept = self._documents.get(url)
        if kept is not None and kept[0] > self._clock():
            return kept[1]
        async with self._fetching:
            client = client_from_document(url, await self._fetch(url))
        self._documents[url] = (self._clock() + DOCUMENT_FRESH_S, client)
        self._documents.move_to_end(url)
        while len(self._documents) > DOCUMENTS_KEPT:
            self._documents.popitem(last=False)
        return client

    async def _fetch(self, url: str) -> Any:
        assert self._http is not None
        body = bytearray()
        try:
            with anyio.fail_after(DOCUMENT_DEADLINE_S):
                async with self._http.stream("GET", url, headers={"Accept": "application/json"}) as response:
                    if response.status_code != 200:
                        raise ClientMetadataError(f"its metadata document answered HTTP {response.status_code}")
                    async for chunk in plain_chunks(response):
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            raise ClientMetadataError(f"its metadata document is over {MAX_DOCUMENT_BYTES} bytes")
        except TimeoutError:
            raise ClientMetadataError(f"its metadata document took over {DOCUMENT_DEADLINE_S:g} s") from None
        except httpx.HTTPError as exc:
            raise ClientMetadataError(f"its metadata document could not be fetched ({type(exc).__name__})") from None
        except Exception as exc:  # the guarded network's refusals (a private address, say) and decoding limits
            if isinstance(exc, ClientMetadataError):
                raise
            raise ClientMetadataError(f"its metadata document could not be fetched: {exc}") from None
        try:
            return json.loads(bytes(body))
        except ValueError:
            raise ClientMetadataError("its metadata document is not JSON") from None


def client_from_document(url: str, document: Any) -> RegisteredClient:
    """The app a metadata document describes, if it follows the rules: it names itself by its own URL, is a public
    client (no secret: anyone can read the document) and lists redirect URIs this server accepts."""
    if not isinstance(document, dict):
        raise ClientMetadataError("its metadata document is not a JSON object")
    if document.get("client_id") != url:
        raise ClientMetadataError("its metadata document's client_id is not the document's own URL")
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise ClientMetadataError("its metadata document holds a client secret, which a public document cannot keep")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientMetadataError(f"token_endpoint_auth_method {str(method)[:40]!r} is not supported (only 'none')")
    try:
        client = RegisteredClient.model_validate({**document, "token_endpoint_auth_method": "none"})
    except ValidationError as exc:
        raise ClientMetadataError(
            f"its metadata document is not valid client metadata ({exc.error_count()} errors)"
        ) from None
    problem = registration_problem(client)
    if problem:
        raise ClientMetadataError(problem)
    return client
