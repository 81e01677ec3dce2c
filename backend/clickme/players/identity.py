"""The player cookie: the player's id and token epoch signed with the server's secret
(HMAC-SHA256). Forgetting a player bumps their epoch: cookies signed before stop working."""

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLAYER_COOKIE = "clickme_player"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
MAX_ID_DIGITS = 18
# Verified tokens kept (``verify_player_token``): a cookie comes with every stroke, and its
# HMAC cost the event loop about 0.13 ms after a 50 ms pause (4 µs in a loop), a kept answer 0.02.
TOKENS_KEPT = 8192


@dataclass(frozen=True)
class PlayerToken:
    player_id: int
    epoch: int


def _signature(secret: str, player_id: int, epoch: int) -> str:
    # Epoch 0 signs as the cookies made before epochs existed, so those stay valid until forgotten.
    message = f"player:{player_id}" if epoch == 0 else f"player:{player_id}:{epoch}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_player_token(secret: str, player_id: int, epoch: int = 0) -> str:
    prefix = f"{player_id}" if epoch == 0 else f"{player_id}.{epoch}"
    return f"{prefix}.{_signature(secret, player_id, epoch)}"


def _ascii_number(raw: str) -> int | None:
    # ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_ID_DIGITS:
        return None
    return int(raw)


@functools.lru_cache(maxsize=TOKENS_KEPT)
def verify_player_token(secret: str, token: str | None) -> PlayerToken | None:
    """The player id and epoch in a cookie value, or None when missing, malformed or forged;
    the answers for the last ``TOKENS_KEPT`` (secret, token) pairs are kept (a pure function of
    the two: a forgetting bumps the epoch in the database, not what a token says)."""
    parts = token.split(".") if token else []
    if len(parts) not in (2, 3):
        return None
    player_id = _ascii_number(parts[0])
    epoch = _ascii_number(parts[1]) if len(parts) == 3 else 0
    if player_id is None or epoch is None:
        return None
    expected = _signature(secret, player_id, epoch)
    if not hmac.compare_digest(parts[-1].encode(), expected.encode()):
        return None
    return PlayerToken(player_id, epoch)


def hash_ip(secret: str, ip: str) -> str:
    """The IP address as the database keeps it: HMAC-SHA256 with the server's secret, in hex."""
    return hmac.new(secret.encode(), f"ip:{ip}".encode(), hashlib.sha256).hexdigest()


def scope_ip_hash(secret: str, scope: Mapping[str, Any]) -> str:
    """The caller's address (an ASGI scope's client) as kept and rate-limited: a salted hash,
    never the address."""
    client = scope.get("client")
    return hash_ip(secret, client[0] if client else "")
