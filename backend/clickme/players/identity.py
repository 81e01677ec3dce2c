"""The player cookie: the player's id signed with the server's secret (HMAC-SHA256)."""

import base64
import hashlib
import hmac

PLAYER_COOKIE = "clickme_player"
COOKIE_MAX_AGE_S = 365 * 24 * 3600


def _signature(secret: str, player_id: int) -> str:
    digest = hmac.new(secret.encode(), f"player:{player_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_player_id(secret: str, player_id: int) -> str:
    return f"{player_id}.{_signature(secret, player_id)}"


def verify_player_token(secret: str, token: str | None) -> int | None:
    """The player id in a cookie value, or None when missing, malformed or forged."""
    if not token or "." not in token:
        return None
    raw_id, signature = token.split(".", 1)
    # ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses.
    if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
        return None
    player_id = int(raw_id)
    expected = _signature(secret, player_id)
    return player_id if hmac.compare_digest(signature.encode(), expected.encode()) else None


def hash_ip(secret: str, ip: str) -> str:
    """The IP address as the database keeps it: HMAC-SHA256 with the server's secret, in hex."""
    return hmac.new(secret.encode(), f"ip:{ip}".encode(), hashlib.sha256).hexdigest()
