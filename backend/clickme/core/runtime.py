"""What a running API process holds: settings, database, scorer and image cache."""

from dataclasses import dataclass

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.scorer import Scorer


@dataclass
class Runtime:
    settings: Settings
    database: Database
    scorer: Scorer
    images: PreparedImageCache
    owns_scorer: bool = True

    def close(self) -> None:
        if self.owns_scorer:
            self.scorer.close()
        self.database.dispose()
