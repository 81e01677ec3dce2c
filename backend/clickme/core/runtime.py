"""What a running API process holds: settings, database, scorer and in-memory caches."""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.lru import LruCache
from clickme.game.service import RoundFacts
from clickme.players.ratelimit import GameLimits, RateLimiter, SlidingWindowLimiter
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.scorer import Scorer

LIVE_ROUNDS_KEPT = 4096
LIVE_MASKS_KEPT = 512
# Finished rounds' revealed areas (a float each), for the campaign pictures.
REVEALED_AREAS_KEPT = 200_000


@dataclass
class Runtime:
    settings: Settings
    database: Database
    scorer: Scorer
    images: PreparedImageCache
    owns_scorer: bool = True
    rounds: LruCache[int, RoundFacts] = field(default_factory=lambda: LruCache(LIVE_ROUNDS_KEPT))
    masks: LruCache[int, tuple[int, np.ndarray]] = field(
        default_factory=lambda: LruCache(LIVE_MASKS_KEPT)
    )
    revealed: LruCache[int, float] = field(default_factory=lambda: LruCache(REVEALED_AREAS_KEPT))
    limiter: RateLimiter = field(default_factory=SlidingWindowLimiter)

    @cached_property
    def limits(self) -> GameLimits:
        return GameLimits.from_settings(self.settings)

    def close(self) -> None:
        if self.owns_scorer:
            self.scorer.close()
        self.database.dispose()
