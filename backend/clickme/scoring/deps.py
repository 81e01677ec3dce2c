"""The scoring domain's view of the runtime: the default scorer, any registered model's scorer
and the prepared-image cache."""

from typing import Annotated, Protocol

from fastapi import Depends

from clickme.core.deps import CoreRuntime, get_runtime
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.scorer import Scorer


class ScoringRuntime(CoreRuntime, Protocol):
    @property
    def scorer(self) -> Scorer: ...

    @property
    def images(self) -> PreparedImageCache: ...

    def running_scorer(self, model_name: str) -> Scorer | None:
        """The scorer of a registered model if it is running (never starts one)."""
        ...

    def scorer_for(self, model_name: str) -> Scorer:
        """The running scorer of a registered model (blocking: call it off the event loop)."""
        ...


AppRuntime = Annotated[ScoringRuntime, Depends(get_runtime)]
