"""The shared store (Redis) of several API processes: the client, and key names under a prefix.

Everything kept there can be lost (a Redis restart): rate-limit windows start afresh and the
leaderboard is rebuilt from the database.
"""

import threading
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

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


class ThreadsConnections:
    """A client's commands sent on a connection of its pool that each thread keeps: packed and
    read back by redis-py's own connection, without the client's layers per command (the
    pool's checkout and its checks, the retry wrapper, the response callbacks): 0.2 ms less
    in the reveal's thread, for its two commands (``benchmarks/bench_requests.py``). A command
    that fails on a lost connection is sent once more on a new one; errors are redis-py's,
    responses as its parser gives them (decoded as the client decodes)."""

    def __init__(self, client: Redis) -> None:
        self._pool = client.connection_pool
        self._kept = threading.local()

    def execute(self, *args: EncodableT) -> Any:
        connection = self._connection()
        packed = connection.pack_command(*args)
        try:
            connection.send_packed_command(packed)
            return connection.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            connection.disconnect()  # what it held is unusable: sent again on a new connection
            connection.send_packed_command(packed)
            return connection.read_response()

    def run_script(self, script: Script, keys: list[str], args: list[EncodableT]) -> Any:
        """A script registered with the client, by its hash (EVALSHA) on this thread's
        connection; loaded through the client first where Redis does not have it (a new or
        restarted Redis)."""
        try:
            return self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return script(keys=keys, args=args)

    def _connection(self) -> AbstractConnection:
        connection: AbstractConnection | None = getattr(self._kept, "connection", None)
        if connection is None:
            connection = self._kept.connection = self._pool.get_connection()
        return connection
