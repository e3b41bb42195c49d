"""OAuth grants, in plain terms: what a person allowed an app to do, and the rules every credential follows.

A grant is one person's yes to one app: it holds their RunComfy token (sealed, never in clear) and is the
caller's identity for history, budgets and isolation. Codes and tokens are random strings handed out once;
only their SHA-256 is kept, so the history store never holds a usable credential.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

ACCESS_TOKEN_S = 3600  # short-lived: a refresh (which rotates) brings the next one
REFRESH_TOKEN_S = 30 * 86400
CODE_S = 300  # the redirect back to the app takes seconds; RFC 6749 §4.1.2 says ten minutes at most
PENDING_S = 900  # time to find one's RunComfy token and paste it
MAX_CONSENT_TRIES = 5  # refused tokens per sign-in: the page is no oracle for guessing tokens
CLIENT_UNUSED_S = 86400  # a registered app that never got a grant is forgotten after a day

MAX_REDIRECT_URIS = 10
MAX_REDIRECT_URI_CHARS = 2000
MAX_CLIENT_NAME_CHARS = 120

TokenKind = Literal["access", "refresh"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Schemes a browser would run or read rather than hand to an app: never a place to send a code.
_NEVER_REDIRECT_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"})


def new_secret(prefix: str) -> str:
    """A credential with 256 bits of randomness; the prefix names its kind for anyone who finds one."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(value: str) -> str:
    """What the store keeps of a code or token (a high-entropy secret needs no salt or stretching)."""
    return hashlib.sha256(value.encode()).hexdigest()


def grant_owner(grant_id: str) -> str:
    """The history partition of a grant: what the token fingerprint is in the passthrough mode."""
    return f"grant:{grant_id}"


@dataclass(frozen=True)
class PendingAuthorization:
    """An authorization request waiting for the person's answer on the consent page."""

    request_id: str
    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    state: str | None
    scopes: tuple[str, ...]
    resource: str
    csrf: str
    expires_at: float
    tries: int = 0


@dataclass(frozen=True)
class Grant:
    grant_id: str
    client_id: str
    client_name: str
    sealed_token: str  # the person's RunComfy token, encrypted; emptied when the grant is revoked
    token_owner: str  # the RunComfy token's fingerprint, so a person can find the grants made with it
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class IssuedCode:
    code_hash: str
    grant_id: str
    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str
    expires_at: float
    used_at: float | None = None  # kept until it expires, so a second use is seen (and ends the grant)


@dataclass(frozen=True)
class IssuedToken:
    token_hash: str
    kind: TokenKind
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str
    expires_at: float
    spent_at: float | None = None  # a refresh token that was rotated: presenting it again ends the grant


@dataclass(frozen=True)
class TokenPair:
    """What a code or refresh exchange hands the app, in clear, once."""

    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]


def redirect_uri_problem(uri: str) -> str | None:
    """Why an app may not register `uri` as a place to send codes, or None.

    HTTPS anywhere; plain HTTP only to this machine (a native app's loopback listener, RFC 8252 §7.3);
    an app's own scheme (RFC 8252 §7.1) unless browsers treat it as content.
    """
    if len(uri) > MAX_REDIRECT_URI_CHARS:
        return f"it is over {MAX_REDIRECT_URI_CHARS} characters"
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        return "it is not an absolute URI"
    if parts.fragment or "#" in uri:
        return "it has a fragment"
    if scheme in _NEVER_REDIRECT_SCHEMES:
        return f"{scheme}: URIs cannot receive a code"
    if scheme in ("http", "https"):
        if not parts.hostname:
            return "it names no host"
        if parts.username or parts.password:
            return "it carries a user name or password"
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            return "plain http is allowed only to this machine (127.0.0.1, [::1] or localhost); use https"
    return None


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3: the app picks one at run time)."""
    if requested == registered:
        return True
    reg, req = urlsplit(registered), urlsplit(requested)
    if reg.scheme != "http" or req.scheme != "http" or reg.hostname not in LOOPBACK_HOSTS:
        return False
    if req.username or req.password or req.fragment:
        return False
    try:
        req.port  # noqa: B018 - a port that is not a number is no loopback listener
    except ValueError:
        return False
    return (req.hostname, req.path, req.query) == (reg.hostname, reg.path, reg.query)


def client_id_url_problem(client_id: str) -> str | None:
    """Why `client_id` cannot be a Client ID Metadata Document URL, or None (the IETF draft's rules, section 3)."""
    if len(client_id) > MAX_REDIRECT_URI_CHARS:
        return "it is too long"
    parts = urlsplit(client_id)
    if parts.scheme != "https" or not parts.hostname:
        return "it must be an https URL"
    if parts.username or parts.password or parts.fragment or "#" in client_id:
        return "it must carry no user name, password or fragment"
    segments = parts.path.split("/")
    if parts.path in ("", "/") or any(s in (".", "..") for s in segments):
        return "it must have a path without . or .. segments"
    return None


def is_client_id_url(client_id: str) -> bool:
    return client_id.startswith("https://")
