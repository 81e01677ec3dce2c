"""The shared store (Redis) of several API processes: the client, and key names under a prefix.

Everything kept there can be lost (a Redis restart): rate-limit windows start afresh and the
leaderboard is rebuilt from the database.
"""

from redis import Redis

from clickme.core.config import Settings

# A Redis that does not answer within this fails the request (503) instead of holding it.
REDIS_TIMEOUT_S = 2.0


def connect_redis(settings: Settings) -> Redis | None:
    """A client for CLICKME_REDIS_URL (connections open on first use); None without one."""
    if not settings.redis_url:
        return None
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        health_check_interval=30,
    )


def redis_key(prefix: str, *parts: str) -> str:
    """``prefix:part:part``: every key of one deployment begins with its prefix."""
    return ":".join((prefix, *parts))
