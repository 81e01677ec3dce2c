"""What a running API process holds: settings, database, scorer and in-memory caches."""

import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.lru import LruCache
from clickme.game.service import RoundFacts
from clickme.models.registry import get_model_spec
from clickme.players.ratelimit import GameLimits, RateLimiter, SlidingWindowLimiter
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.scorer import Scorer, start_scorer

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

    other_scorers: dict[str, Scorer] = field(default_factory=dict)
    _scorers_lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def limits(self) -> GameLimits:
        return GameLimits.from_settings(self.settings)

    def scorer_for(self, model_name: str) -> Scorer:
        """The running scorer of a registered model: the default one, or one started on first
        use and kept (blocking: call it off the event loop)."""
        if model_name == self.scorer.spec.name:
            return self.scorer
        with self._scorers_lock:
            scorer = self.other_scorers.get(model_name)
            if scorer is None:
                scorer = start_scorer(self.settings, get_model_spec(model_name))
                self.other_scorers[model_name] = scorer
        return scorer

    def close(self) -> None:
        for scorer in self.other_scorers.values():
            scorer.close()
        if self.owns_scorer:
            self.scorer.close()
        self.database.dispose()
