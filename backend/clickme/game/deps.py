"""The game's view of the runtime: the live rounds' caches, the leaderboard and the rule of
the rounds that count."""

from typing import Annotated, Protocol

from fastapi import Depends

from clickme.core.deps import get_runtime
from clickme.core.lru import LruCache
from clickme.core.work_threads import WorkThreads
from clickme.game.leaderboard import LeaderboardStore
from clickme.game.live import Answer, LiveReveal
from clickme.game.outcomes import RoundRule
from clickme.game.service import RoundFacts
from clickme.players.deps import PlayersRuntime


class GameRuntime(PlayersRuntime, Protocol):
    @property
    def rounds(self) -> LruCache[int, RoundFacts]: ...

    @property
    def masks(self) -> LruCache[int, LiveReveal]: ...

    @property
    def answers(self) -> LruCache[int, Answer]: ...

    @property
    def leaderboard(self) -> LeaderboardStore: ...

    @property
    def map_rules(self) -> RoundRule: ...

    @property
    def campaign_models(self) -> LruCache[str, str]:
        """The DNN's name each campaign slug had at its last round start in this process."""
        ...

    @property
    def reveal_threads(self) -> WorkThreads:
        """Where the blocking work of a reveal or a round route runs (one hop per request,
        ``clickme.game.threads``)."""
        ...


AppRuntime = Annotated[GameRuntime, Depends(get_runtime)]
