"""Password hashing."""

from __future__ import annotations

import pytest

from core import security
from core.security import generate_password, hash_password, verify_password


def test_hash_and_verify() -> None:
    hashed = hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a long enough password")
    assert not verify_password(hashed, "another password")
    assert not verify_password("not-a-hash", "a long enough password")


def test_generated_passwords_differ() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 16 and p.isalnum() for p in passwords)


def test_production_hashes_use_argon2id_at_full_strength(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite hashes cheaply (tests/conftest.py); production keeps RFC 9106's low-memory
    # profile: 3 passes over 64 MiB with 4 lanes.
    monkeypatch.setattr(security, "_hasher", security.PRODUCTION_HASHER)
    security._dummy_hash.cache_clear()
    try:
        hashed = hash_password("a long enough password")
        assert hashed.split("$")[1:4] == ["argon2id", "v=19", "m=65536,t=3,p=4"]
        assert verify_password(hashed, "a long enough password")
        assert security._dummy_hash().split("$")[3] == "m=65536,t=3,p=4"
    finally:
        security._dummy_hash.cache_clear()


def test_hashes_made_with_other_parameters_still_verify() -> None:
    # A hash carries its parameters: changing the hasher does not lock anyone out.
    strong = security.PRODUCTION_HASHER.hash("a long enough password")
    assert verify_password(strong, "a long enough password")
    assert not verify_password(strong, "another password")
