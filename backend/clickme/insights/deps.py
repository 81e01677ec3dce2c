"""The insights' view of the runtime: the game's and the campaigns' (the unwinnable images'
measuring), the campaigns' reliability measurements and the finished rounds' revealed areas."""

from typing import Annotated, Protocol

from fastapi import Depends

from clickme.campaigns.deps import CampaignsRuntime
from clickme.core.deps import get_runtime
from clickme.core.lru import LruCache
from clickme.game.deps import GameRuntime
from clickme.insights.reliability import CampaignMeasurements


class InsightsRuntime(GameRuntime, CampaignsRuntime, Protocol):
    @property
    def reliability(self) -> CampaignMeasurements: ...

    @property
    def revealed(self) -> LruCache[int, float]: ...


AppRuntime = Annotated[InsightsRuntime, Depends(get_runtime)]
