"""What a running API process holds: settings, database, scorer and in-memory caches."""

import asyncio
import threading
from dataclasses import dataclass, field
from functools import cached_property, partial

from redis import Redis
from sqlalchemy.orm import Session

from clickme.core.background import BackgroundWorker
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.lru import LruCache
from clickme.core.metrics import REVEAL_THREAD_PREFIX, ROUNDS_FINISHED
from clickme.core.work_threads import WorkThreads
from clickme.game.leaderboard import LeaderboardStore, SqlLeaderboard
from clickme.game.live import Answer, LiveReveal
from clickme.game.service import EndedRound, RoundFacts, on_rounds_ended, player_summary
from clickme.insights.reliability import CampaignMeasurements
from clickme.maps.aggregate import MapSettings
from clickme.maps.retirement import measure_after_round
from clickme.players.models import Player
from clickme.players.ratelimit import GameLimits, RateLimiter, SlidingWindowLimiter
from clickme.players.schemas import PlayerOut
from clickme.players.service import on_standing_changed
from clickme.scoring.registry import get_model_spec
from clickme.scoring.remote import open_scorer
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.scorer import Scorer

LIVE_ROUNDS_KEPT = 4096
CAMPAIGNS_KEPT = 1024
LIVE_MASKS_KEPT = 512
# Finished rounds' revealed areas (a float each), for the campaign pictures.
REVEALED_AREAS_KEPT = 200_000
# Images waiting to be measured for retirement by reliability; more wait for their next round.
MEASUREMENTS_WAITING = 1000
CAMPAIGNS_WAITING = 64
# Threads that do the game's blocking database work (reveals and the round routes, one hop a
# request): few, so that a crowd waits in one queue instead of fighting over the interpreter
# lock in forty, and never more sessions at once than the smallest pool holds.
REVEAL_THREADS = 8


@dataclass
class Runtime:
    settings: Settings
    database: Database
    scorer: Scorer
    images: PreparedImageCache
    owns_scorer: bool = True
    loop: asyncio.AbstractEventLoop | None = None  # the app's: scorers read their answers on it
    rounds: LruCache[int, RoundFacts] = field(default_factory=lambda: LruCache(LIVE_ROUNDS_KEPT))
    # Each live round's reveal so far.
    masks: LruCache[int, LiveReveal] = field(default_factory=lambda: LruCache(LIVE_MASKS_KEPT))
    revealed: LruCache[int, float] = field(default_factory=lambda: LruCache(REVEALED_AREAS_KEPT))
    limiter: RateLimiter = field(default_factory=SlidingWindowLimiter)
    leaderboard: LeaderboardStore = field(default_factory=SqlLeaderboard)
    redis: Redis | None = None
    retirement: BackgroundWorker = field(
        default_factory=lambda: BackgroundWorker("retirement", MEASUREMENTS_WAITING)
    )
    reliability: CampaignMeasurements = field(init=False)
    # Campaigns waiting to have their unwinnable images measured (after activation).
    winnable: BackgroundWorker = field(
        default_factory=lambda: BackgroundWorker("winnable", CAMPAIGNS_WAITING)
    )
    # What makes a round count (its image's play, the maps): the campaigns' map rules.
    map_rules: MapSettings = field(default_factory=MapSettings)
    # Each live round's last answer (its guesses), for answering a repeated batch.
    answers: LruCache[int, Answer] = field(default_factory=lambda: LruCache(LIVE_ROUNDS_KEPT))
    # The DNN each campaign slug played with at its last round start here (admission control).
    campaign_models: LruCache[str, str] = field(default_factory=lambda: LruCache(CAMPAIGNS_KEPT))

    reveal_threads: WorkThreads = field(
        default_factory=lambda: WorkThreads(REVEAL_THREADS, REVEAL_THREAD_PREFIX)
    )
    other_scorers: dict[str, Scorer] = field(default_factory=dict)
    _scorers_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reliability = CampaignMeasurements(self.database)
        on_rounds_ended(self.database.sessionmaker, self._rounds_ended)
        on_standing_changed(self.database.sessionmaker, self._standing_changed)

    def _rounds_ended(self, ended: list[EndedRound]) -> None:
        """Count the rounds a commit ended, measure their images again for retirement by
        reliability (after the response, see ``clickme.maps.retirement``), and update their
        players' leaderboard entries."""
        for round_ in ended:
            ROUNDS_FINISHED.labels(round_.outcome).inc()
            if round_.outcome in self.map_rules.outcomes:
                job = partial(measure_after_round, self.database, round_.round_id)
                self.retirement.submit(round_.round_id, job)
        for player_id in {round_.player_id for round_ in ended}:
            self.leaderboard.player_changed(player_id)

    def _standing_changed(self, player_ids: set[int]) -> None:
        """A commit excluded, flagged or cleared players: hide or show them on the leaderboards."""
        for player_id in player_ids:
            self.leaderboard.player_changed(player_id)

    @cached_property
    def limits(self) -> GameLimits:
        return GameLimits.from_settings(self.settings)

    def player_summary(self, session: Session, player: Player) -> PlayerOut:
        """The player with their totals as the game counts them (for the players' routes)."""
        return player_summary(session, player)

    def scorer_for(self, model_name: str) -> Scorer:
        """The running scorer of a registered model: the default one, or one started on first
        use and kept (blocking: call it off the event loop)."""
        if model_name == self.scorer.spec.name:
            return self.scorer
        with self._scorers_lock:
            scorer = self.other_scorers.get(model_name)
            if scorer is None:
                scorer = open_scorer(self.settings, get_model_spec(model_name), self.loop)
                self.other_scorers[model_name] = scorer
        return scorer

    def running_scorer(self, model_name: str) -> Scorer | None:
        """The scorer of a registered model if it is running (never starts one)."""
        if model_name == self.scorer.spec.name:
            return self.scorer
        return self.other_scorers.get(model_name)

    def close(self) -> None:
        self.reveal_threads.shutdown(wait=True)
        self.retirement.close()
        self.winnable.close()
        self.reliability.close()
        for scorer in self.other_scorers.values():
            scorer.close()
        if self.owns_scorer:
            self.scorer.close()
        if self.redis is not None:
            self.redis.close()
        self.database.dispose()
