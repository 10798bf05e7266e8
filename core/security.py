"""Password hashing (Argon2id) and generated passwords."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
_ALPHABET = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    """Argon2id hash of a password, salt and parameters included."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches; False for a wrong password or a corrupt hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password(length: int = 16) -> str:
    """A random password people can type (letters and digits only)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
