"""Secrets at rest: a person's RunComfy token (and an app's client secret) sealed with Fernet before storing.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) authenticates what it encrypts, so a sealed value
that was altered, or sealed under another key, does not open. The plaintext names what the secret belongs to
(a grant id), so a sealed token copied onto another grant's row does not open there either. Several keys may be
given: the first seals, all open, which is how a key is rotated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SealingKeyError(ValueError):
    """A key that is not a Fernet key (the message says so, never the key)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


class Sealer:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SealingKeyError("no key was given")
        fernets = []
        for number, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except ValueError:
                raise SealingKeyError(
                    f"key {number} is not a Fernet key (32 random bytes, url-safe base64: 44 characters)"
                ) from None
        self._fernet = MultiFernet(fernets)

    def seal(self, secret: str, belongs_to: str) -> str:
        return self._fernet.encrypt(json.dumps({"for": belongs_to, "secret": secret}).encode()).decode()

    def open(self, sealed: str, belongs_to: str, *, max_age_s: int | None = None) -> str | None:
        """The secret, or None when it cannot be opened here (another key, altered, moved to another owner, or sealed
        more than `max_age_s` ago)."""
        try:
            value = json.loads(self._fernet.decrypt(sealed.encode(), ttl=max_age_s))
        except (InvalidToken, ValueError):
            return None
        if not isinstance(value, dict) or value.get("for") != belongs_to or not isinstance(value.get("secret"), str):
            return None
        return str(value["secret"])
