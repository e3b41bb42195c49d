"""Keeps RunComfy tokens and the database password out of every string that leaves the process (results, logs,
errors).

The server's own token is always a secret. An HTTP caller's token is a secret only while that
caller's request runs: it lives in a context variable, so it scrubs that request's result and log
lines and nobody else's, and nothing of it is kept once the request ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

REDACTED = "[redacted]"
# Bearer credentials in text we did not produce (an upstream body echoing a header, say).
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
# A password in a URL's user part (postgresql://user:PASSWORD@host), whoever logs it.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
_request_secret: ContextVar[str | None] = ContextVar("runcomfy_request_secret", default=None)


@contextmanager
def request_secret(token: str | None) -> Iterator[None]:
    """Treat `token` as a secret in this request (and the tasks it starts), and only there."""
    reset = _request_secret.set(token)
    try:
        yield
    finally:
        _request_secret.reset(reset)


class Redactor:
    """Replaces the server's secrets (its token, the database password), the current request's token, bearer-shaped
    credentials and URL passwords with a marker."""

    def __init__(self, *secrets: str | None) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        secrets = self._secrets
        caller = _request_secret.get()
        if caller and caller not in secrets:
            secrets = tuple(sorted((*secrets, caller), key=len, reverse=True))
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", _BEARER.sub(rf"\g<1>{REDACTED}", text))

    def structure(self, value: Any) -> Any:
        """The same value with every string in it redacted; its shape is never re-parsed from text."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.structure(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.structure(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """Formats each record early and redacts the result, so args cannot smuggle the token out."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            record.exc_info = None
            record.exc_text = None
        record.msg = self._redact(message)
        record.args = None
        return True
