"""A hosted server the MCP way: the SDK's own OAuth client connects to `runcomfy-mcp --auth oauth` as a connector
would (discovery from the 401, registration, the consent page, the code exchange) and runs a job that RunComfy
sees paid with the person's token, never with the server's own access token."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import TOKEN
from helpers import structured, text_of
from http_servers import http_client, http_server
from mcp import Client
from oauth_flow import (
    KEY,
    LITE,
    LITE_ARGS,
    REDIRECT_URI,
    Connector,
    answer_consent,
    authorization_url,
    bearer_client,
    code_for,
    exchange,
    in_process,
    mcp_status,
    oauth_server,
    open_consent,
    pkce,
    query_of,
    register,
    tokens_for,
)
from runcomfy_mcp.sandbox.simulator import Simulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def database_bytes(tmp_path: Path) -> bytes:
    """Everything the SQLite history holds on disk, its write-ahead log included."""
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "data").glob("jobs.sqlite3*")))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_connector_signs_in_and_runs_a_job_paid_with_the_persons_token(
    api_url: str, simulator: Simulator, tmp_path: Path, mode: str
) -> None:
    log = (tmp_path / "server.log").open("wb")
    async with oauth_server(api_url, tmp_path, "--log-level", "DEBUG", log=log) as server:
        connector = Connector(server, TOKEN)
        async with connector.client(mode) as client:
            job = structured(await client.call_tool(LITE, LITE_ARGS))
            listed = structured(await client.call_tool("list_jobs", {}))["jobs"]
            account = await client.call_tool("get_account", {})
    log.close()
    tokens = connector.storage.tokens
    assert tokens is not None and tokens.refresh_token and tokens.expires_in == 3600
    assert connector.storage.client_info is not None  # registered dynamically: no client was configured
    assert len(connector.authorization_urls) == 1 and "resource=" in connector.authorization_urls[0]
    # Discovery began with the 401: the protected resource's metadata, then its authorization server's.
    assert connector.exchanges[:5] == [
        ("POST", "/mcp", 401),
        ("GET", "/.well-known/oauth-protected-resource/mcp", 200),
        ("GET", "/.well-known/oauth-authorization-server", 200),
        ("POST", "/register", 201),
        ("POST", "/token", 200),
    ]
    assert connector.exchanges[5][:2] == ("POST", "/mcp") and connector.exchanges[5][2] < 300
    # The answer that brought the code back named this server (RFC 9207), and the SDK's client checked it.
    (redirect,) = connector.redirects
    assert query_of(redirect)["iss"] == server.base and query_of(redirect)["code"]
    assert [j["request_id"] for j in listed] == [job["request_id"]]
    # RunComfy saw the person's token on the paid POST, and never a credential this server issued.
    assert simulator.calls.sent_with("POST", "/v1/models/") == [f"Bearer {TOKEN}"]
    # Only the person's token, or none (output files are fetched without one): never a credential this server issued.
    assert set(simulator.calls.credentials) <= {f"Bearer {TOKEN}", ""}
    assert tokens.access_token not in str(simulator.calls.credentials)
    # The RunComfy token is in no log line, no result, and nowhere in the database in clear; nor are the tokens.
    shown = text_of(account) + str(account.structured_content) + str(job) + str(listed)
    logged = (tmp_path / "server.log").read_bytes()
    stored = database_bytes(tmp_path)
    assert b"OAuth:" in logged and b"granted access" in logged  # the log was written, at DEBUG
    for secret in (TOKEN, tokens.access_token, tokens.refresh_token):
        assert secret not in shown and secret.encode() not in logged and secret.encode() not in stored
    assert KEY.encode() not in logged and KEY.encode() not in stored
    assert b"oauth_grants" in stored


async def test_without_a_token_the_server_answers_401_with_its_metadata(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        anonymous = await http.post(server.mcp, json=body)
        passthrough = await http.post(server.mcp, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        resource = (await http.get(f"{server.base}/.well-known/oauth-protected-resource/mcp")).json()
        bare = (await http.get(f"{server.base}/.well-known/oauth-protected-resource")).json()
        metadata = (await http.get(f"{server.base}/.well-known/oauth-authorization-server")).json()
    assert anonymous.status_code == 401 and passthrough.status_code == 401  # a RunComfy token is no token here
    challenge = anonymous.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert (
        resource == bare and resource["resource"] == server.mcp and resource["authorization_servers"] == [server.base]
    )
    assert metadata["issuer"] == server.base and metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert {"registration_endpoint", "revocation_endpoint"} <= set(metadata)


async def test_the_consent_page_shows_who_asks_and_protects_itself(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base, client_name="Acme <b>Video</b> Studio")
        form = await open_consent(http, authorization_url(server.base, client_id, pkce()[1]))
    page, headers = form.page.text, form.page.headers
    assert "Acme &lt;b&gt;Video&lt;/b&gt; Studio" in page and "<b>Video</b>" not in page  # named, and escaped
    assert "registered itself" in page and "127.0.0.1" in page  # where the answer goes
    assert page.count('type="password"') == 1 and 'name="runcomfy_token"' in page
    assert "http://" not in page.replace(server.base, "") and "https://" not in page  # no external asset
    assert "<script" not in page and " src=" not in page
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "style-src 'sha256-" in csp
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    cookie = headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


async def test_a_token_runcomfy_refuses_is_said_plainly_and_grants_nothing(
    api_url: str, simulator: Simulator, tmp_path: Path
) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        form = await open_consent(http, authorization_url(server.base, client_id, pkce()[1]))
        refused = await answer_consent(server.base, form, "rc-not-a-real-token")
        malformed = await answer_consent(server.base, form, "two words")
        accepted = await answer_consent(server.base, form, TOKEN)
        again = await answer_consent(server.base, form, TOKEN)  # the same form sent twice
    assert refused.status_code == 400 and "RunComfy did not accept this token" in refused.text
    assert "rc-not-a-real-token" not in refused.text  # the form comes back empty, never with the token in it
    assert "4 tries left" in refused.text and 'name="runcomfy_token"' in refused.text
    assert malformed.status_code == 400 and "characters a token cannot have" in malformed.text
    assert accepted.status_code == 303 and "code=" in accepted.headers["location"]
    assert again.status_code == 400 and "expired" in again.text and "location" not in again.headers
    balance_checks = simulator.calls.sent_with("GET", "/balance")
    assert balance_checks == ["Bearer rc-not-a-real-token", f"Bearer {TOKEN}"]  # a malformed one is never sent
    assert simulator.calls.count("POST") == 0


async def test_five_refused_tokens_end_the_sign_in(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        form = await open_consent(http, authorization_url(server.base, client_id, pkce()[1]))
        answers = [await answer_consent(server.base, form, f"rc-guess-{i}") for i in range(5)]
        late = await answer_consent(server.base, form, TOKEN)
    assert "1 try left" in answers[3].text and "last try" in answers[4].text
    assert late.status_code == 400 and "expired" in late.text


async def test_declining_sends_the_app_access_denied_with_the_issuer(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        url = authorization_url(server.base, client_id, pkce()[1], state="keep-me")
        form = await open_consent(http, url)
        declined = await answer_consent(server.base, form, "", decision="deny")
    assert declined.status_code == 303
    location = declined.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    assert query_of(location) == {
        "error": "access_denied",
        "error_description": "The person declined.",
        "state": "keep-me",
        "iss": server.base,
    }


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_grant(
    api_url: str, simulator: Simulator, tmp_path: Path
) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id, first = await tokens_for(http, server.base, TOKEN)
        refresh = {"grant_type": "refresh_token", "client_id": client_id, "resource": server.mcp}
        second = await http.post(f"{server.base}/token", data={**refresh, "refresh_token": first["refresh_token"]})
        assert second.status_code == 200, second.text
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"] and rotated["access_token"] != first["access_token"]
        async with bearer_client(server.mcp, rotated["access_token"]) as client:
            job = structured(await client.call_tool(LITE, LITE_ARGS))["request_id"]
        # The first refresh token again: someone kept a copy. The grant ends, for both holders.
        replay = await http.post(f"{server.base}/token", data={**refresh, "refresh_token": first["refresh_token"]})
        after = await mcp_status(http, server.base, rotated["access_token"])
        later = await http.post(f"{server.base}/token", data={**refresh, "refresh_token": rotated["refresh_token"]})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert after == 401 and later.status_code == 400
    assert job in simulator.jobs


async def test_two_grants_are_two_callers(api_url: str, simulator: Simulator, tmp_path: Path) -> None:
    """The grant is the caller: each sees only the jobs made through it, even with the same RunComfy token."""
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        _, alice = await tokens_for(http, server.base, TOKEN)
        _, other = await tokens_for(http, server.base, TOKEN)
        async with bearer_client(server.mcp, alice["access_token"]) as first:
            job = structured(await first.call_tool(LITE, LITE_ARGS))["request_id"]
        async with bearer_client(server.mcp, other["access_token"]) as second:
            seen = structured(await second.call_tool("list_jobs", {}))["jobs"]
            status = await second.call_tool("get_status", {"request_id": job})
    assert seen == [] and status.is_error and "in your history" in text_of(status)


async def test_sqlite_keeps_no_credential_in_clear(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        _, issued = await tokens_for(http, server.base, TOKEN)
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        grants = db.execute("SELECT sealed_token, token_owner FROM oauth_grants").fetchall()
        tokens = db.execute("SELECT token_hash FROM oauth_tokens").fetchall()
    assert len(grants) == 1 and grants[0][0].startswith("gAAAA") and TOKEN not in grants[0][0]  # Fernet, sealed
    assert len(tokens) == 2 and all(len(h) == 64 for (h,) in tokens)
    assert issued["access_token"] not in str(tokens) and TOKEN.encode() not in database_bytes(tmp_path)


async def test_exchange_needs_the_verifier_the_same_redirect_and_the_right_client(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        thief = await register(http, server.base)
        code, verifier = await code_for(http, server.base, client_id, TOKEN)
        no_verifier = await exchange(http, server.base, client_id, code, None)
        wrong_verifier = await exchange(http, server.base, client_id, code, pkce()[0])
        other_redirect = await exchange(http, server.base, client_id, code, verifier, redirect_uri=REDIRECT_URI + "x")
        stolen = await exchange(http, server.base, thief, code, verifier)
        good = await exchange(http, server.base, client_id, code, verifier)
    assert no_verifier.status_code == 400 and no_verifier.json()["error"] == "invalid_request"
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    assert other_redirect.status_code == 400 and "redirect_uri" in other_redirect.json()["error_description"]
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert good.status_code == 200  # none of the failed attempts spent the code


async def test_a_code_used_twice_ends_what_it_opened(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        code, verifier = await code_for(http, server.base, client_id, TOKEN)
        first = await exchange(http, server.base, client_id, code, verifier)
        before = await mcp_status(http, server.base, first.json()["access_token"])
        second = await exchange(http, server.base, client_id, code, verifier)
        after = await mcp_status(http, server.base, first.json()["access_token"])
    assert first.status_code == 200 and before != 401
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert after == 401  # the tokens of the first exchange die with the grant (OAuth 2.1 §4.1.3)


async def test_redirect_uris_match_exactly_but_a_loopback_port_may_change(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        challenge = pkce()[1]
        off_by_one = await http.get(
            authorization_url(server.base, client_id, challenge, redirect_uri=REDIRECT_URI[:-1] + "K")
        )
        other_host = await http.get(
            authorization_url(server.base, client_id, challenge, redirect_uri="http://evil.example/callback")
        )
        plain_pkce = await http.get(authorization_url(server.base, client_id, "a" * 43, code_challenge_method="plain"))
        other_port = await http.get(
            authorization_url(server.base, client_id, challenge, redirect_uri="http://127.0.0.1:50999/callback")
        )
        refused = [
            await http.post(f"{server.base}/register", json={"redirect_uris": [uri], "client_name": "x"})
            for uri in ("http://evil.example/cb", "javascript:alert(1)", "https://app.example/cb#frag")
        ]
    for answer in (off_by_one, other_host):
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"  # never redirected there
        assert "location" not in answer.headers
    assert other_port.status_code == 302 and "/consent?request=" in other_port.headers["location"]
    assert plain_pkce.status_code == 302 and query_of(plain_pkce.headers["location"])["error"] == "invalid_request"
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert all(r.json()["error"] == "invalid_redirect_uri" for r in refused)


async def test_a_token_for_another_resource_is_refused(api_url: str, tmp_path: Path) -> None:
    """Asked for another resource, the server refuses (with the issuer on the error); a token it issued as another
    server (another public URL on the same history) is refused here."""
    async with in_process(api_url) as first, httpx.AsyncClient() as http:
        client_id = await register(http, first.base)
        challenge = pkce()[1]
        elsewhere = await http.get(
            authorization_url(first.base, client_id, challenge, resource="https://other.example/mcp")
        )
        _, issued = await tokens_for(http, first.base, TOKEN)
        async with in_process(api_url) as second:  # the same data folder: the same grants
            there = await mcp_status(http, second.base, issued["access_token"])
        here = await mcp_status(http, first.base, issued["access_token"])
    assert elsewhere.status_code == 302
    assert query_of(elsewhere.headers["location"])["error"] == "invalid_target"
    assert query_of(elsewhere.headers["location"])["iss"] == first.base
    assert there == 401 and here != 401


async def test_consent_without_its_csrf_value_grants_nothing(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        form = await open_consent(http, authorization_url(server.base, client_id, pkce()[1]))
        no_csrf = await answer_consent(server.base, form, TOKEN, csrf=None)
        wrong_csrf = await answer_consent(server.base, form, TOKEN, csrf="guessed")
        form.cookies = {}  # a cross-site POST: the SameSite cookie is not sent
        no_cookie = await answer_consent(server.base, form, TOKEN)
        form.cookies = dict(form.page.cookies)
        async with httpx.AsyncClient(cookies=form.cookies) as browser:
            other_site = await browser.post(
                f"{server.base}/consent",
                data={"request": form.request, "csrf": form.csrf, "runcomfy_token": TOKEN, "decision": "allow"},
                headers={"Origin": "https://evil.example"},
            )
        honest = await answer_consent(server.base, form, TOKEN)
    for answer in (no_csrf, wrong_csrf, no_cookie, other_site):
        assert answer.status_code == 403 and "location" not in answer.headers and "Nothing was granted" in answer.text
    assert honest.status_code == 303  # the refused posts used up nothing


async def test_revocation_by_a_public_client_stops_access_at_once(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id, issued = await tokens_for(http, server.base, TOKEN)
        assert await mcp_status(http, server.base, issued["access_token"]) != 401
        # RFC 7009 from a public client: the token and its client_id, no secret.
        revoked = await http.post(
            f"{server.base}/revoke", data={"token": issued["access_token"], "client_id": client_id}
        )
        access = await mcp_status(http, server.base, issued["access_token"])
        refresh = await http.post(
            f"{server.base}/token",
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": issued["refresh_token"]},
        )
        unknown = await http.post(f"{server.base}/revoke", data={"token": "rcm_at_nothing", "client_id": client_id})
    assert revoked.status_code == 200 and access == 401
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    assert unknown.status_code == 200  # RFC 7009 §2.2


async def test_a_confidential_client_must_send_its_secret_to_revoke(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        registered = await http.post(
            f"{server.base}/register",
            json={"client_name": "Server-side app", "redirect_uris": [REDIRECT_URI]},
        )
        client = registered.json()
        assert client["token_endpoint_auth_method"] == "client_secret_post" and client["client_secret"]
        verifier, challenge = pkce()
        form = await open_consent(http, authorization_url(server.base, client["client_id"], challenge))
        code = query_of((await answer_consent(server.base, form, TOKEN)).headers["location"])["code"]
        issued = await exchange(
            http, server.base, client["client_id"], code, verifier, client_secret=client["client_secret"]
        )
        token = issued.json()["access_token"]
        without_secret = await http.post(
            f"{server.base}/revoke", data={"token": token, "client_id": client["client_id"]}
        )
        still = await mcp_status(http, server.base, token)
        with_secret = await http.post(
            f"{server.base}/revoke",
            data={"token": token, "client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        after = await mcp_status(http, server.base, token)
    assert without_secret.status_code == 401 and still != 401
    assert with_secret.status_code == 200 and after == 401


async def test_expired_tokens_and_codes_are_refused(api_url: str, tmp_path: Path) -> None:
    """Time passes in the history store (the lifetimes are an hour and five minutes): what expired is refused."""
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id, issued = await tokens_for(http, server.base, TOKEN)
        code, verifier = await code_for(http, server.base, client_id, TOKEN)
        before = await mcp_status(http, server.base, issued["access_token"])
        with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
            db.execute("UPDATE oauth_tokens SET expires_at = 1 WHERE kind = 'access'")
            db.execute("UPDATE oauth_codes SET expires_at = 1")
        expired_access = await mcp_status(http, server.base, issued["access_token"])
        expired_code = await exchange(http, server.base, client_id, code, verifier)
        refreshed = await http.post(
            f"{server.base}/token",
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": issued["refresh_token"]},
        )
        renewed = await mcp_status(http, server.base, refreshed.json()["access_token"])
    assert before != 401 and expired_access == 401
    assert expired_code.status_code == 400 and "expired" in expired_code.json()["error_description"]
    assert refreshed.status_code == 200 and renewed != 401  # the refresh token, still alive, brings a new one


async def test_a_person_sees_and_ends_their_connections_with_their_token(api_url: str, simulator: Simulator) -> None:
    simulator.tokens.add("rc-someone-else-7c1d")
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        _, mine = await tokens_for(http, server.base, TOKEN)
        _, theirs = await tokens_for(http, server.base, "rc-someone-else-7c1d")

        async def listing(token: str, browser: httpx.AsyncClient) -> httpx.Response:
            page = await browser.get(f"{server.base}/connections")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None and 'name="runcomfy_token"' in page.text
            data = {"csrf": csrf.group(1), "runcomfy_token": token}
            return await browser.post(f"{server.base}/connections", data=data, headers={"Origin": server.base})

        async with httpx.AsyncClient() as browser:
            listed = await listing(TOKEN, browser)
            forms = dict(re.findall(r'name="(grant|ticket|csrf)" value="([^"]+)"', listed.text))
            forged = await browser.post(
                f"{server.base}/connections/disconnect",
                data={**forms, "ticket": forms["ticket"][:-4] + "AAAA"},
                headers={"Origin": server.base},
            )
            ended = await browser.post(
                f"{server.base}/connections/disconnect", data=forms, headers={"Origin": server.base}
            )
        async with httpx.AsyncClient() as stranger:  # no cookie from the page: a cross-site post
            cross_site = await stranger.post(
                f"{server.base}/connections", data={"csrf": forms["csrf"], "runcomfy_token": TOKEN}
            )
        async with httpx.AsyncClient() as browser:
            nothing = await listing("rc-never-used-anywhere", browser)
        mine_after = await mcp_status(http, server.base, mine["access_token"])
        theirs_after = await mcp_status(http, server.base, theirs["access_token"])
    assert listed.status_code == 200 and "Hand-driven app" in listed.text and listed.text.count("Disconnect<") == 1
    assert TOKEN not in listed.text
    assert forged.status_code == 400 and ended.status_code == 200 and "Disconnected" in ended.text
    assert cross_site.status_code == 403 and "No connections" in nothing.text
    assert mine_after == 401 and theirs_after != 401  # only the grant shown to its own token's holder ended


async def test_on_a_shared_port_a_grant_is_the_caller_its_sessions_count_against(api_url: str, tmp_path: Path) -> None:
    """The session cap per caller counts grants: a refreshed access token is the same caller, another app signed in
    with the same RunComfy token is another; without a token the answer is the OAuth challenge, not a session."""
    async with in_process(api_url, http_sessions_per_caller=2) as server, httpx.AsyncClient() as http:
        client_id, first = await tokens_for(http, server.base, TOKEN)
        _, second = await tokens_for(http, server.base, TOKEN)

        async def open_session(access_token: str | None) -> httpx.Response:
            hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "p", "version": "1"}}
            body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
            headers = {"Accept": "application/json, text/event-stream"}
            if access_token:
                headers["Authorization"] = f"Bearer {access_token}"
            return await http.post(server.mcp, json=body, headers=headers)

        opened = [await open_session(first["access_token"]) for _ in range(2)]
        refreshed = await http.post(
            f"{server.base}/token",
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": first["refresh_token"]},
        )
        third = await open_session(refreshed.json()["access_token"])
        other_app = await open_session(second["access_token"])
        anonymous = await open_session(None)
    assert [o.status_code for o in opened] == [200, 200] and all(o.headers["mcp-session-id"] for o in opened)
    assert third.status_code == 429 and "2 open sessions" in third.text and "mcp-session-id" not in third.headers
    assert other_app.status_code == 200 and other_app.headers["mcp-session-id"]
    assert anonymous.status_code == 401 and "resource_metadata=" in anonymous.headers["www-authenticate"]


async def test_the_passthrough_stays_an_explicit_documented_mode(api_url: str, simulator: Simulator) -> None:
    """`--auth runcomfy-token`: the caller's RunComfy token is the bearer token and is forwarded; no OAuth endpoint
    answers; on loopback no warning. The README names the mode and says why OAuth is the one to expose."""
    log: list[str] = []
    async with http_server(api_url, "--auth", "runcomfy-token", token=None, log=log) as url:
        async with http_client(url, TOKEN) as client:
            job = structured(await client.call_tool(LITE, LITE_ARGS))
        async with httpx.AsyncClient() as http:
            metadata = await http.get(url.removesuffix("/mcp") + "/.well-known/oauth-protected-resource/mcp")
    assert job["request_id"] and simulator.calls.sent_with("POST", "/v1/models/") == [f"Bearer {TOKEN}"]
    assert metadata.status_code == 404
    assert log and not any("without --auth oauth" in line for line in log)
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "(`--auth runcomfy-token`, the default)" in readme and 'forbids "token passthrough"' in readme
    assert "A server other people reach should run `--auth oauth` instead" in readme


async def test_a_grants_yes_to_a_cost_is_not_another_grants(api_url: str, simulator: Simulator) -> None:
    """Asked to confirm a cost (protocol 2026-07-28), the sealed yes is bound to the caller, which is the grant: another
    app signed in with the same RunComfy token cannot spend with it, the app it was given to can, once."""

    async def never_asked(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        raise AssertionError("answered by hand")

    def asking(access_token: str) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {access_token}"})
        return Client(streamable_http_client(server.mcp, http_client=http), elicitation_callback=never_asked)

    costly = {**LITE_ARGS, "duration": 10}  # $0.18, above the $0.10 asked about
    yes = {"confirm_spend": types.ElicitResult(action="accept", content={"confirm": True})}
    consent_key = "k" * 16 + "0123456789abcdef0123456789abcdef"
    async with in_process(api_url, confirm_above_usd=0.1, consent_key=consent_key) as server:
        async with httpx.AsyncClient() as http:
            _, first = await tokens_for(http, server.base, TOKEN)
            _, second = await tokens_for(http, server.base, TOKEN)
        async with asking(first["access_token"]) as mine, asking(second["access_token"]) as other_app:
            question = await mine.session.call_tool(LITE, costly, allow_input_required=True)
            assert isinstance(question, types.InputRequiredResult), question
            with pytest.raises(MCPError, match="Invalid or expired requestState"):
                await other_app.session.call_tool(
                    LITE, costly, input_responses=yes, request_state=question.request_state, allow_input_required=True
                )
            sent = await mine.session.call_tool(
                LITE, costly, input_responses=yes, request_state=question.request_state, allow_input_required=True
            )
    assert isinstance(sent, types.CallToolResult) and not sent.is_error, sent
    assert len(simulator.calls.submits) == 1
