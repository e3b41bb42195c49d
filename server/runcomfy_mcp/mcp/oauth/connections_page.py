"""Your connections: a person pastes their RunComfy token and sees, and can end, the apps they allowed with it.

The token itself is the proof: only grants made with it (matched by its fingerprint) are listed, and it is never
sent to RunComfy or stored here. Each listed grant comes with a short-lived sealed ticket, so the token is not put
back into the page to end one. Same-site checks as on the consent page (a SameSite cookie, the form's CSRF value,
the Origin).
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from runcomfy_mcp.core.grants import TICKET_S, GrantService
from runcomfy_mcp.domain.grants import Grant
from runcomfy_mcp.mcp.oauth.pages import notice, page, same_site
from runcomfy_mcp.upstream.redaction import request_secret

CONNECTIONS_PATH = "/connections"
DISCONNECT_PATH = "/connections/disconnect"
MAX_FORM_BYTES = 16 * 1024


class ConnectionsPage:
    def __init__(self, grants: Callable[[], GrantService], *, issuer: str) -> None:
        self._grants = grants
        issuer = issuer.rstrip("/")
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        self._secure = issuer.startswith("https://")
        self._cookie = "__Host-runcomfy_connections" if self._secure else "runcomfy_connections"

    def routes(self) -> list[Route]:
        def limited(handler: Callable[[Request], Awaitable[Response]]) -> RequestBodyLimitMiddleware:
            return RequestBodyLimitMiddleware(request_response(handler), MAX_FORM_BYTES)

        return [
            Route(CONNECTIONS_PATH, self.show, methods=["GET"]),
            Route(CONNECTIONS_PATH, limited(self.listing), methods=["POST"]),
            Route(DISCONNECT_PATH, limited(self.disconnect), methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        csrf = secrets.token_urlsafe(32)
        e = html.escape
        body = f"""<h1>Your connections</h1>
<p>Paste your RunComfy API token to see the apps you allowed with it on this server, and end their access.</p>
<form method="post" action="{CONNECTIONS_PATH}">
<input type="hidden" name="csrf" value="{e(csrf)}">
<label for="runcomfy_token">Your RunComfy API token</label>
<input id="runcomfy_token" name="runcomfy_token" type="password" autocomplete="off" spellcheck="false" required>
<div class="actions"><button type="submit">Show my connections</button></div>
</form>"""
        response = page("Your connections", body, 200)
        response.set_cookie(
            self._cookie, csrf, max_age=TICKET_S, path="/", secure=self._secure, httponly=True, samesite="strict"
        )
        return response

    async def _fields(self, request: Request) -> dict[str, str] | None:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        csrf = request.cookies.get(self._cookie, "")
        return fields if same_site(request, self._origin, fields.get("csrf", ""), csrf, csrf) else None

    async def listing(self, request: Request) -> Response:
        fields = await self._fields(request)
        if fields is None:
            return notice("This form's security check failed", "Nothing was shown. Open this page again.", 403)
        token = fields.get("runcomfy_token", "").strip()
        if not token:
            return notice("No token was given", "Open this page again and paste your RunComfy API token.", 400)
        with request_secret(token):
            listed = await self._grants().grants_of(token)
        if not listed:
            return notice("No connections", "No app is connected to this server with that token.", 200)
        rows = "".join(self._row(grant, ticket, fields["csrf"]) for grant, ticket in listed)
        body = f"""<h1>Your connections</h1>
<p>These apps can run jobs with this token through this server. Ending one refuses its very next request.</p>
<ul>{rows}</ul>
<p class="hint">If your token may have leaked, also revoke it in your RunComfy profile: that ends every use
of it.</p>"""
        return page("Your connections", body, 200)

    def _row(self, grant: Grant, ticket: str, csrf: str) -> str:
        e = html.escape
        since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(grant.created_at))
        return f"""<li><b>{e(grant.client_name)}</b>, allowed {e(since)}
<form method="post" action="{DISCONNECT_PATH}">
<input type="hidden" name="csrf" value="{e(csrf)}">
<input type="hidden" name="grant" value="{e(grant.grant_id)}">
<input type="hidden" name="ticket" value="{e(ticket)}">
<button type="submit" class="secondary">Disconnect</button></form></li>"""

    async def disconnect(self, request: Request) -> Response:
        fields = await self._fields(request)
        if fields is None:
            return notice("This form's security check failed", "Nothing was disconnected. Open this page again.", 403)
        if not await self._grants().disconnect(fields.get("ticket", ""), fields.get("grant", "")):
            return notice(
                "This list is out of date",
                "Nothing was disconnected. Open this page again and show your connections.",
                400,
            )
        return notice("Disconnected", "That app's access has ended: its next request is refused.", 200)
