"""The insights' view of the runtime: the campaigns' reliability measurements and the
finished rounds' revealed areas."""

from typing import Annotated, Protocol

from fastapi import Depends

from clickme.core.deps import get_runtime
from clickme.core.lru import LruCache
from clickme.insights.reliability import CampaignMeasurements
from clickme.scoring.deps import ScoringRuntime


class InsightsRuntime(ScoringRuntime, Protocol):
    @property
    def reliability(self) -> CampaignMeasurements: ...

    @property
    def revealed(self) -> LruCache[int, float]: ...


AppRuntime = Annotated[InsightsRuntime, Depends(get_runtime)]
