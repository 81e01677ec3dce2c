"""Password hashing (Argon2id), random tokens and their hashes, salted IP hashes."""

import hashlib
import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

STAFF_COOKIE = "clickme_staff"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other Argon2 parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """A hash to verify against when the email is unknown, so both cases cost the same."""
    return hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def hash_ip(secret: str, ip: str) -> str:
    """The IP address as an HMAC-SHA256 keyed with the server secret: never stored in clear."""
    return hmac.new(secret.encode(), f"ip:{ip}".encode(), hashlib.sha256).hexdigest()
