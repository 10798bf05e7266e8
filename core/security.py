"""Password hashing (Argon2id) and generated passwords."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults (RFC 9106 low-memory profile): 3 passes over 64 MiB, 4 lanes.
PRODUCTION_HASHER = PasswordHasher()
_hasher = PRODUCTION_HASHER
MIN_PASSWORD_LENGTH = 10
_ALPHABET = string.ascii_letters + string.digits


def use_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Hash new passwords with `hasher` from now on (tests use cheap parameters); returns the
    previous one. Existing hashes keep verifying: each carries its own parameters."""
    global _hasher
    previous, _hasher = _hasher, hasher
    _dummy_hash.cache_clear()  # the dummy must cost what a real hash with these parameters costs
    return previous


def hash_password(password: str) -> str:
    """Argon2id hash of a password, salt and parameters included."""
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    # Made once per process, with the same parameters as real hashes, so checking it costs
    # what checking a real one costs.
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; False for a wrong password, a corrupt hash or no hash.

    With no hash (unknown or inactive user) a dummy hash is checked all the same, so a failure
    takes as long whether or not the user exists: timing does not reveal usernames.
    """
    try:
        if password_hash is None:
            _hasher.verify(_dummy_hash(), password)
            return False
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password(length: int = 16) -> str:
    """A random password people can type (letters and digits only)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def sign(key: str, purpose: bytes, body: str) -> str:
    """URL-safe HMAC-SHA256 of `body`; `purpose` keeps signatures for different uses apart."""
    digest = hmac.new(key.encode(), purpose + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signature_matches(key: str, purpose: bytes, body: str, signature: str) -> bool:
    """Whether `signature` is `body`'s signature for `purpose` (compared in constant time)."""
    return hmac.compare_digest(signature.encode(), sign(key, purpose, body).encode())
