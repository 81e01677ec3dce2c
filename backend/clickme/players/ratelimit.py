"""Rate limits: at most ``count`` hits per ``window_s`` seconds per key (a player, an IP hash).

``RateLimiter`` is the interface; ``SlidingWindowLimiter`` keeps exact sliding windows in this
process (amortised O(1) a hit, no I/O). A shared store (Redis) can implement the same interface
when the game runs in several processes.
"""

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from clickme.core.config import Settings
from clickme.core.errors import ClickmeError

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


def enforce(limiter: RateLimiter, limit: Limit, key: str) -> None:
    """429 ``rate_limited`` with Retry-After when the key is over the limit."""
    wait_s = limiter.hit(limit, key)
    if wait_s > 0:
        raise ClickmeError(
            429,
            "rate_limited",
            f"too many requests ({limit.name}): at most {limit.count} per {limit.window_s:g} s",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
