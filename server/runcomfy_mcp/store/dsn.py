"""The secret parts of a database URL, found without the driver (which may not be installed) and without trusting
the URL to parse: a password with a space or a stray `/` is exactly the URL that the driver quotes back in its
error messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

REDACTED = "[redacted]"
# postgresql://user:PASSWORD@host…: greedy up to the last '@', so an unescaped '@' or '/' in the password is kept.
_URL_USERINFO = re.compile(r"(?is)^\s*postgres(?:ql)?://(?P<userinfo>.*)@")
# password=… as a key=value pair or a URL parameter, quoted ('…') or bare
_PASSWORD_PAIR = re.compile(r"""(?i)(?:^|[\s?&])password\s*=\s*(?:'(?P<quoted>(?:[^'\\]|\\.)*)'|(?P<bare>[^\s&]+))""")
_MIN_PIECE = 4  # shorter pieces of a password would redact ordinary words in every log line


def _passwords(dsn: str) -> Iterator[str]:
    userinfo = _URL_USERINFO.match(dsn)
    if userinfo and ":" in userinfo["userinfo"]:
        yield userinfo["userinfo"].partition(":")[2]
    for pair in _PASSWORD_PAIR.finditer(dsn):
        yield pair["quoted"] if pair["quoted"] is not None else pair["bare"]


def dsn_password(dsn: str) -> str | None:
    """The password as written in `dsn` (its first one), or None when it names none."""
    return next((p for p in _passwords(dsn) if p), None)


def dsn_secrets(dsn: str | None) -> tuple[str, ...]:
    """Every string of `dsn` that must never be shown: its password as written and decoded, and the pieces a
    driver may quote when it cannot parse it (split at spaces and URL delimiters), longest first."""
    found: set[str] = set()
    for password in _passwords(dsn or ""):
        found |= {password, unquote(password)}
        found |= {piece for piece in re.split(r"[\s/?#@,&]+", password) if len(piece) >= _MIN_PIECE}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text
