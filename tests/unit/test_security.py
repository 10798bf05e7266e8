"""Password hashing."""

from __future__ import annotations

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
