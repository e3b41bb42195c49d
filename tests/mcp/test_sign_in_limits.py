"""Registrations and sign-ins per address, on their own: a sliding window, and a flood that stores nothing more."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from oauth_flow import authorization_url, in_process, pkce, register
from runcomfy_mcp.mcp.oauth.sign_in_limits import REGISTRATIONS, SIGN_INS, AddressRate, Rate

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def test_the_window_slides_and_each_address_has_its_own() -> None:
    now = [0.0]
    rate = AddressRate(Rate(count=3, window_s=60), clock=lambda: now[0])
    for at in (0.0, 10.0, 20.0):
        now[0] = at
        assert rate.take("192.0.2.1") is None
    now[0] = 30.0
    assert rate.take("192.0.2.1") == pytest.approx(30.0)  # full: the first one leaves the window in 30 s
    assert rate.take("192.0.2.2") is None  # another address is not affected
    now[0] = 60.0
    assert rate.take("192.0.2.1") is None  # the first one left; the refused one never counted
    assert rate.take("192.0.2.1") == pytest.approx(10.0)  # the one at 10 s is next to leave


def rows(tmp_path: Path, table: str) -> int:
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def from_address(address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address), timeout=20)


async def test_one_address_cannot_fill_the_history_with_apps(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, from_address("127.0.0.2") as flood:
        body = {"client_name": "flood", "redirect_uris": ["http://127.0.0.1:9/cb"]}
        answers = [await flood.post(f"{server.base}/register", json=body) for _ in range(REGISTRATIONS.count + 5)]
        stored = rows(tmp_path, "oauth_clients")
        async with from_address("127.0.0.1") as someone_else:
            theirs = await register(someone_else, server.base)
    statuses = [a.status_code for a in answers]
    assert statuses == [201] * REGISTRATIONS.count + [429] * 5
    refused = answers[-1]
    assert refused.json()["error"] == "temporarily_unavailable"
    assert "registers once" in refused.json()["error_description"]
    assert 3500 < int(refused.headers["retry-after"]) <= 3600
    assert stored == REGISTRATIONS.count and theirs


async def test_one_address_cannot_fill_the_history_with_sign_ins(api_url: str, tmp_path: Path) -> None:
    async with in_process(api_url) as server, httpx.AsyncClient() as http:
        client_id = await register(http, server.base)
        challenge = pkce()[1]
        async with from_address("127.0.0.3") as flood:
            answers = [
                await flood.get(authorization_url(server.base, client_id, challenge)) for _ in range(SIGN_INS.count + 3)
            ]
        stored = rows(tmp_path, "oauth_pending")
        mine = await http.get(authorization_url(server.base, client_id, challenge))
    assert [a.status_code for a in answers] == [302] * SIGN_INS.count + [429] * 3
    refused = answers[-1]
    assert "Too many sign-ins" in refused.text and "location" not in refused.headers
    assert 0 < int(refused.headers["retry-after"]) <= SIGN_INS.window_s
    assert refused.headers["content-security-policy"].startswith("default-src 'none'")
    assert stored == SIGN_INS.count and mine.status_code == 302  # another address still signs in
