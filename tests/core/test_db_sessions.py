"""A burst of requests that each need a database session, more than the pool holds, on both
databases: none may wait for a connection that a finished request keeps while its response waits
for a worker thread (FastAPI validates a sync route's response in the thread pool before the
session's commit)."""

import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.scoring.scorer import Scorer

BURST = 120  # above the thread pool (40) plus the pool's connections (30 on PostgreSQL)


def test_a_burst_of_new_players_is_served_without_a_pool_timeout(
    game_settings: Settings, shared_scorer: Scorer
) -> None:
    settings = game_settings.model_copy(update={"rate_players_per_min": 10 * BURST})
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(BURST) as pool:
            statuses = list(
                pool.map(
                    lambda _: client.post("/api/players", json={"consent": True}).status_code,
                    range(BURST),
                )
            )
        elapsed = time.monotonic() - started
    assert statuses == [201] * BURST
    assert elapsed < 20  # the pool's timeout is 30 s
