"""Secrets at rest: sealed with the key, for one owner, opened by rotated keys too."""

from __future__ import annotations

import pytest

from runcomfy_mcp.core.sealing import Sealer, SealingKeyError, new_key


def test_a_sealed_token_opens_only_with_the_key_and_for_its_own_grant() -> None:
    old, new = new_key(), new_key()
    sealed = Sealer([old]).seal("rc-token", "grant-1")
    assert "rc-token" not in sealed
    assert Sealer([old]).open(sealed, "grant-1") == "rc-token"
    assert Sealer([old]).open(sealed, "grant-2") is None  # copied onto another grant's row
    assert Sealer([new]).open(sealed, "grant-1") is None  # another key
    tampered = sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB")
    assert Sealer([old]).open(tampered, "grant-1") is None
    rotated = Sealer([new, old])  # the new key seals, the old one still opens
    assert rotated.open(sealed, "grant-1") == "rc-token"
    assert Sealer([new]).open(rotated.seal("rc-token", "grant-1"), "grant-1") == "rc-token"


def test_a_key_that_is_not_a_fernet_key_is_refused_by_number() -> None:
    with pytest.raises(SealingKeyError, match="key 2 is not a Fernet key") as refused:
        Sealer([new_key(), "hunter2"])
    assert "hunter2" not in str(refused.value)
    with pytest.raises(SealingKeyError):
        Sealer([])
