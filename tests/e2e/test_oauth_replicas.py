"""OAuth across replicas: two `runcomfy-mcp --auth oauth` processes on one PostgreSQL, behind one public URL. A sign-in
begun on one may finish on the other, a grant works on both, and revoked by its app or ended by its person on one it is
refused by the other's next request."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import TOKEN
from helpers import structured
from http_servers import free_port
from oauth_flow import (
    LITE,
    LITE_ARGS,
    answer_consent,
    authorization_url,
    bearer_client,
    exchange,
    mcp_status,
    oauth_server,
    pkce,
    query_of,
    read_consent,
    register,
    tokens_for,
)
from runcomfy_mcp.sandbox.simulator import Simulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


async def test_a_grant_revoked_on_one_replica_is_refused_by_the_other(
    api_url: str, simulator: Simulator, database_url: str, tmp_path: Path
) -> None:
    port_a = free_port()
    public = f"http://127.0.0.1:{port_a}"  # the balancer's address: both replicas name it in every token
    shared = {"RUNCOMFY_DATABASE_URL": database_url}
    async with (
        oauth_server(api_url, tmp_path / "a", "--public-url", public, port=port_a, **shared) as a,
        oauth_server(api_url, tmp_path / "b", "--public-url", public, **shared) as b,
        httpx.AsyncClient() as http,
    ):
        # Registered on A; the person's browser reaches the consent page on B and answers it there.
        client_id = await register(http, a.base)
        verifier, challenge = pkce()
        sent = await http.get(authorization_url(public, client_id, challenge))  # A answers the authorize request
        assert sent.headers["location"].startswith(f"{public}/consent?request=")
        form = read_consent(await http.get(sent.headers["location"].replace(a.base, b.base)))
        answered = await answer_consent(b.base, form, TOKEN, origin=public)  # the browser saw the public URL
        code = query_of(answered.headers["location"])["code"]
        issued = (await exchange(http, a.base, client_id, code, verifier)).json()
        async with bearer_client(a.mcp, issued["access_token"]) as on_a:
            job = structured(await on_a.call_tool(LITE, LITE_ARGS))["request_id"]
        async with bearer_client(b.mcp, issued["access_token"]) as on_b:
            listed = structured(await on_b.call_tool("list_jobs", {}))["jobs"]
        revoked = await http.post(f"{b.base}/revoke", data={"token": issued["refresh_token"], "client_id": client_id})
        on_a_after = await mcp_status(http, a.base, issued["access_token"])
        on_b_after = await mcp_status(http, b.base, issued["access_token"])
        refresh_on_a = await http.post(
            f"{a.base}/token",
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": issued["refresh_token"]},
        )
        # Another app, allowed on A; the person ends it on B's connections page; A refuses it at once.
        _, other = await tokens_for(http, a.base, TOKEN)
        before_on_a = await mcp_status(http, a.base, other["access_token"])
        async with httpx.AsyncClient() as browser:
            page = await browser.get(f"{b.base}/connections")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            person = {"csrf": csrf.group(1), "runcomfy_token": TOKEN}
            connections = await browser.post(f"{b.base}/connections", data=person, headers={"Origin": public})
            forms = dict(re.findall(r'name="(grant|ticket|csrf)" value="([^"]+)"', connections.text))
            ended = await browser.post(f"{b.base}/connections/disconnect", data=forms, headers={"Origin": public})
        other_on_a = await mcp_status(http, a.base, other["access_token"])
    assert [j["request_id"] for j in listed] == [job]  # one grant, one history, whichever replica answers
    assert simulator.calls.sent_with("POST", "/v1/models/") == [f"Bearer {TOKEN}"]
    assert revoked.status_code == 200 and on_a_after == 401 and on_b_after == 401
    assert refresh_on_a.status_code == 400
    assert connections.text.count("Disconnect<") == 1  # the revoked grant is gone from the list already
    assert before_on_a != 401 and ended.status_code == 200 and other_on_a == 401
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        dumped = ""
        for table in ("oauth_clients", "oauth_pending", "oauth_grants", "oauth_codes", "oauth_tokens", "jobs"):
            dumped += str(await (await conn.execute(f"SELECT * FROM {table}")).fetchall())
        owners = await (await conn.execute("SELECT DISTINCT owner FROM jobs")).fetchall()
    assert TOKEN not in dumped and issued["access_token"] not in dumped and issued["refresh_token"] not in dumped
    assert [o[0][:6] for o in owners] == ["grant:"]  # the history's owner is the grant, not the token
