"""The campaigns' view of the runtime: the background measuring of unwinnable images, the
finished rounds' revealed areas, and the rule of the rounds that count."""

from typing import Annotated, Protocol

from fastapi import Depends

from clickme.core.background import BackgroundWorker
from clickme.core.deps import get_runtime
from clickme.core.lru import LruCache
from clickme.game.outcomes import RoundRule
from clickme.players.deps import PlayersRuntime


class CampaignsRuntime(PlayersRuntime, Protocol):
    @property
    def winnable(self) -> BackgroundWorker: ...

    @property
    def revealed(self) -> LruCache[int, float]: ...

    @property
    def map_rules(self) -> RoundRule: ...


AppRuntime = Annotated[CampaignsRuntime, Depends(get_runtime)]
