"""The rules every OAuth credential follows."""

from __future__ import annotations

import pytest

from runcomfy_mcp.domain.grants import (
    client_id_url_problem,
    redirect_uri_matches,
    redirect_uri_problem,
    secret_hash,
)


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("https://claude.ai/api/mcp/auth_callback", True),
        ("http://127.0.0.1:33418/callback", True),
        ("http://localhost:6274/oauth/callback", True),
        ("http://[::1]:8080/cb", True),
        ("cursor://anysphere.cursor-retrieval/oauth/callback", True),
        ("http://claude.ai/callback", False),  # plain http off this machine
        ("https://app.example/cb#fragment", False),
        ("https://user:pw@app.example/cb", False),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("/relative/callback", False),
        ("https://" + "a" * 2100 + ".example/cb", False),
    ],
)
def test_which_redirect_uris_an_app_may_register(uri: str, allowed: bool) -> None:
    assert (redirect_uri_problem(uri) is None) is allowed


@pytest.mark.parametrize(
    ("registered", "requested", "matches"),
    [
        ("https://app.example/cb", "https://app.example/cb", True),
        ("https://app.example/cb", "https://app.example/cb/", False),
        ("https://app.example/cb", "https://app.example/cB", False),
        ("https://app.example/cb", "https://app.example:443/cb?x=1", False),
        ("http://127.0.0.1:3000/cb", "http://127.0.0.1:49152/cb", True),  # RFC 8252 §7.3: any port
        ("http://127.0.0.1:3000/cb", "http://127.0.0.1:49152/other", False),
        ("http://127.0.0.1:3000/cb", "http://localhost:3000/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:x/cb", False),
        ("http://127.0.0.1/cb", "http://user@127.0.0.1:5/cb", False),
        ("https://app.example:8443/cb", "https://app.example:9443/cb", False),  # only loopback ports float
    ],
)
def test_redirect_uris_match_exactly_but_for_a_loopback_port(registered: str, requested: str, matches: bool) -> None:
    assert redirect_uri_matches(registered, requested) is matches


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("https://app.example/oauth/client.json", True),
        ("https://app.example/", False),
        ("https://app.example", False),
        ("http://app.example/client.json", False),
        ("https://app.example/a/../client.json", False),
        ("https://app.example/client.json#x", False),
        ("https://u:p@app.example/client.json", False),
    ],
)
def test_which_urls_may_name_an_app(url: str, usable: bool) -> None:
    assert (client_id_url_problem(url) is None) is usable


def test_a_secret_is_stored_as_a_hash() -> None:
    assert secret_hash("rcm_at_x") == secret_hash("rcm_at_x") and len(secret_hash("rcm_at_x")) == 64
    assert "rcm_at_x" not in secret_hash("rcm_at_x")
