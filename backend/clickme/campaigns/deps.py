"""The campaigns' view of the runtime: the background measuring of unwinnable images."""

from typing import Protocol

from clickme.core.background import BackgroundWorker
from clickme.players.deps import PlayersRuntime


class CampaignsRuntime(PlayersRuntime, Protocol):
    @property
    def winnable(self) -> BackgroundWorker: ...
