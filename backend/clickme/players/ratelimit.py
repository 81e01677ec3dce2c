"""Rate limits: at most ``count`` hits per ``window_s`` seconds per key (a player, an IP hash).

``RateLimiter`` is the interface; ``SlidingWindowLimiter`` keeps exact sliding windows in this
process (amortised O(1) a hit, no I/O); ``RedisRateLimiter`` keeps the same windows in Redis,
shared by every API process (one atomic script a hit). Without Redis a limit holds per process.

When Redis cannot be reached the Redis limiter fails closed: its error becomes a 503
``store_unavailable`` (see ``clickme.core.errors``), because the limits protect the database and
the DNN, and several processes without a shared count would have no limit at all.
"""

import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis import Redis
from redis.typing import EncodableT

from clickme.core.config import Settings
from clickme.core.errors import TooManyRequests
from clickme.core.shared_store import ThreadsConnections, redis_key

KEYS_KEPT = 100_000


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_s: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.window_s <= 0:
            raise ValueError(f"a limit needs count >= 1 and window_s > 0, got {self}")


@dataclass(frozen=True)
class GameLimits:
    """The game's limits, from the settings."""

    reveals_per_player: Limit
    rounds_per_ip: Limit
    players_per_ip: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> "GameLimits":
        return cls(
            reveals_per_player=Limit("point batches per player", settings.rate_reveals_per_s, 1),
            rounds_per_ip=Limit("rounds per address", settings.rate_rounds_per_min, 60),
            players_per_ip=Limit("new players per address", settings.rate_players_per_min, 60),
        )


class RateLimiter(Protocol):
    def hit(self, limit: Limit, key: str) -> float:
        """Count a hit: 0 when allowed, else the seconds until one would be (not counted)."""
        ...


class SlidingWindowLimiter:
    """The times of the last ``count`` allowed hits per key; idle keys drop out past
    ``max_keys`` (least recently hit first)."""

    def __init__(
        self, max_keys: int = KEYS_KEPT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._hits: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    def hit(self, limit: Limit, key: str) -> float:
        now = self._clock()
        with self._lock:
            hits = self._hits.get((limit.name, key))
            if hits is None:
                hits = self._hits[(limit.name, key)] = deque(maxlen=limit.count)
                if len(self._hits) > self._max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end((limit.name, key))
            if len(hits) == limit.count and now - hits[0] < limit.window_s:
                return hits[0] + limit.window_s - now
            hits.append(now)
            return 0.0


# KEYS[1]: the key's allowed hits (a sorted set of times); ARGV: count, window_s, a unique
# member, the time now (seconds; empty: the Redis server's clock, the same for every process),
# how long an idle key outlives its window.
# The same rule as SlidingWindowLimiter: refused while the key holds `count` hits and the oldest
# of them is younger than the window; a refused hit is not counted.
_SLIDING_WINDOW_HIT = """
local count = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now_s = ARGV[4]
if now_s == '' then
  local time = redis.call('TIME')
  now_s = time[1] .. '.' .. string.format('%06d', tonumber(time[2]))
end
local now = tonumber(now_s)
local held = redis.call('ZCARD', KEYS[1])
if held >= count then
  local first = held - count
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], first, first, 'WITHSCORES')[2])
  if now - oldest < window then
    return string.format('%.6f', oldest + window - now)
  end
end
redis.call('ZADD', KEYS[1], now_s, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(count + 1))
redis.call('PEXPIRE', KEYS[1], math.ceil((window + tonumber(ARGV[5])) * 1000))
return '0'
"""
# Idle keys expire this long after their window: the expiry only frees memory (answers come from
# the stored times), so the slack changes no answer.
IDLE_KEY_SLACK_S = 60


class RedisRateLimiter:
    """Sliding windows in Redis, shared by every process; ``clock`` (tests) replaces Redis's."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        clock: Callable[[], float] | None = None,
        commands: ThreadsConnections | None = None,
    ) -> None:
        """``commands``: the client's connections kept by thread, when shared with others."""
        self._hit = redis.register_script(_SLIDING_WINDOW_HIT)
        self._commands = commands or ThreadsConnections(redis)
        self._prefix = prefix
        self._clock = clock

    def hit(self, limit: Limit, key: str) -> float:
        now = repr(self._clock()) if self._clock else ""
        keys = [redis_key(self._prefix, "rate", limit.name, key)]
        args: list[EncodableT] = [
            limit.count,
            limit.window_s,
            secrets.token_hex(8),
            now,
            IDLE_KEY_SLACK_S,
        ]
        # on this thread's connection: every reveal counts one
        return float(self._commands.run_script(self._hit, keys, args))


def rate_limiter(
    redis: Redis | None, prefix: str, commands: ThreadsConnections | None = None
) -> RateLimiter:
    """Windows in Redis when there is one (shared by the processes), else in this process."""
    if redis is None:
        return SlidingWindowLimiter()
    return RedisRateLimiter(redis, prefix, commands=commands)


def enforce(limiter: RateLimiter, limit: Limit, key: str) -> None:
    """429 ``rate_limited`` with Retry-After when the key is over the limit."""
    wait_s = limiter.hit(limit, key)
    if wait_s > 0:
        raise TooManyRequests(
            "rate_limited",
            f"too many requests ({limit.name}): at most {limit.count} per {limit.window_s:g} s",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
