"""The consent page: where a person sees which app asks and answers by pasting their RunComfy token (or declining).

Server-rendered and self-contained (its only style is inline, allowed by hash in a CSP that allows nothing else),
never framed, never cached. A POST must carry the form's CSRF value, the same value in a SameSite=Strict cookie
set with the form, and (when the browser sends one) this server's own Origin; the value is per sign-in and kept
in the history store, so the form may be answered on any replica.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import urlsplit

from mcp.server.auth.provider import construct_redirect_uri
from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, request_response

from runcomfy_mcp.core.grants import GrantService
from runcomfy_mcp.domain.grants import PENDING_S, PendingAuthorization, secret_hash
from runcomfy_mcp.errors import AuthorizationRefusedError
from runcomfy_mcp.mcp.oauth.clients import ClientDirectory, RegisteredClient
from runcomfy_mcp.mcp.oauth.connections_page import CONNECTIONS_PATH
from runcomfy_mcp.mcp.oauth.pages import notice, page, same_site
from runcomfy_mcp.mcp.oauth.provider import CONSENT_PATH
from runcomfy_mcp.upstream.redaction import request_secret

MAX_FORM_BYTES = 16 * 1024
TOKEN_FIELD = "runcomfy_token"


class ConsentPage:
    def __init__(
        self,
        grants: Callable[[], GrantService],
        clients: ClientDirectory,
        *,
        issuer: str,
        server_name: str = "RunComfy models",
    ) -> None:
        self._grants = grants
        self._clients = clients
        self._issuer = issuer.rstrip("/")
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(self._issuer))
        self._secure = self._issuer.startswith("https://")
        self._server_name = server_name

    def routes(self) -> list[Route]:
        return [
            Route(CONSENT_PATH, self.show, methods=["GET"]),
            Route(
                CONSENT_PATH,
                RequestBodyLimitMiddleware(request_response(self.answer), MAX_FORM_BYTES),
                methods=["POST"],
            ),
        ]

    def _cookie_name(self, pending: PendingAuthorization) -> str:
        # One cookie per sign-in, so two sign-ins in two tabs do not overwrite each other's CSRF value.
        name = f"runcomfy_consent_{secret_hash(pending.request_id)[:12]}"
        return f"__Host-{name}" if self._secure else name

    async def show(self, request: Request) -> Response:
        found = await self._load(request.query_params.get("request", ""))
        if isinstance(found, Response):
            return found
        pending, client = found
        response = self._form(pending, client, error=None, status=200)
        response.set_cookie(
            self._cookie_name(pending),
            pending.csrf,
            max_age=PENDING_S,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="strict",
        )
        return response

    async def answer(self, request: Request) -> Response:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        found = await self._load(fields.get("request", ""))
        if isinstance(found, Response):
            return found
        pending, client = found
        cookie = request.cookies.get(self._cookie_name(pending), "")
        if not same_site(request, self._origin, fields.get("csrf", ""), pending.csrf, cookie):
            return notice(
                "This form's security check failed",
                "Nothing was granted. Go back to your app and start connecting again (cookies must be allowed for this "
                "page).",
                403,
            )
        grants = self._grants()
        if fields.get("decision") != "allow":
            await grants.deny(pending)
            return self._back_to_app(pending, error="access_denied", error_description="The person declined.")
        token = fields.get(TOKEN_FIELD, "")
        try:
            with request_secret(token.strip() or None):
                code = await grants.consent(pending, token, client.display_name)
        except AuthorizationRefusedError as refused:
            if refused.final:
                return notice("Nothing was granted", refused.message, 400)
            return self._form(pending, client, error=refused.message, status=400)
        return self._back_to_app(pending, code=code)

    async def _load(self, request_id: str) -> tuple[PendingAuthorization, RegisteredClient] | Response:
        pending = await self._grants().pending(request_id) if 0 < len(request_id) <= 100 else None
        if pending is None:
            return notice(
                "This sign-in link has expired",
                "It was already answered, or it is older than a few minutes. Start connecting again from your app.",
                400,
            )
        client = await self._clients.get(pending.client_id)
        if client is None:
            return notice("The app asking is no longer known here", "Start connecting again from your app.", 400)
        return pending, client

    def _back_to_app(self, pending: PendingAuthorization, **params: str) -> RedirectResponse:
        # RFC 9207: the issuer goes with every answer, so the app can tell which server it came from.
        location = construct_redirect_uri(pending.redirect_uri, **params, state=pending.state, iss=self._issuer)
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})

    def _form(
        self, pending: PendingAuthorization, client: RegisteredClient, *, error: str | None, status: int
    ) -> Response:
        e = html.escape
        name = client.display_name
        if pending.client_id.startswith("https://"):
            who = f"Published at {urlsplit(pending.client_id).hostname}"
        else:
            who = "This app registered itself with this server: only its name says who it is"
        back_to = urlsplit(pending.redirect_uri)
        destination = back_to.hostname or back_to.scheme
        server = urlsplit(self._issuer).netloc
        error_box = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
        body = f"""<h1>Allow {e(name)} to use your RunComfy account?</h1>
<p class="who">{e(who)}. After you answer, you go back to <b>{e(destination)}</b>.</p>
<ul>
<li>It can run {e(self._server_name)} through {e(server)}: submit paid jobs with your RunComfy token, follow them and
fetch what they made, within this server's limits.</li>
<li>It sees the jobs made through this connection, never anyone else's.</li>
<li>Your token is checked with RunComfy, kept encrypted on this server, and never shown to {e(name)} or anyone.
You can end this access at any time on <b>{e(server)}{CONNECTIONS_PATH}</b>.</li>
</ul>
{error_box}
<form method="post" action="{CONSENT_PATH}">
<input type="hidden" name="request" value="{e(pending.request_id)}">
<input type="hidden" name="csrf" value="{e(pending.csrf)}">
<label for="{TOKEN_FIELD}">Your RunComfy API token</label>
<input id="{TOKEN_FIELD}" name="{TOKEN_FIELD}" type="password" autocomplete="off" spellcheck="false" required>
<p class="hint">Find it in your RunComfy profile: Profile → API keys.</p>
<div class="actions"><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary" formnovalidate>Deny</button></div>
</form>"""
        return page(f"Connect {name} to RunComfy", body, status)
