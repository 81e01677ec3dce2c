"""The campaigns' view of the runtime: the background measuring of unwinnable images."""

from typing import Annotated, Protocol

from fastapi import Depends

from clickme.core.background import BackgroundWorker
from clickme.core.deps import get_runtime
from clickme.players.deps import PlayersRuntime


class CampaignsRuntime(PlayersRuntime, Protocol):
    @property
    def winnable(self) -> BackgroundWorker: ...


AppRuntime = Annotated[CampaignsRuntime, Depends(get_runtime)]
