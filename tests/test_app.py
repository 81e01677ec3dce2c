"""The app factory's choices that no route shows: FastAPI's native OpenTelemetry, and the
runtime's Redis connections."""

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from sqlalchemy import update

from clickme.app import build_runtime, create_app
from clickme.campaigns.service import change_state
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.shared_store import redis_key
from clickme.game.leaderboard import GLOBAL_BOARD
from clickme.game.models import Round
from clickme.images import labels
from clickme.scoring.scorer import Scorer
from tests.conftest import REDIS_TEST_URL
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds
from tests.redis_server import pool_checkouts


@pytest.mark.parametrize("opentelemetry", [False, True])
def test_native_telemetry_asks_the_providers_only_when_configured(
    game_settings: Settings,
    shared_scorer: Scorer,
    monkeypatch: pytest.MonkeyPatch,
    opentelemetry: bool,
) -> None:
    """Off (the default), a request never looks up OpenTelemetry's global providers (FastAPI's
    per-request check cost about 0.1 ms after an idle pause); ``CLICKME_OPENTELEMETRY`` turns
    it back on."""
    asked = []
    provider = trace.get_tracer_provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: asked.append(1) or provider)
    settings = game_settings.model_copy(update={"opentelemetry": opentelemetry})
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        asked.clear()  # whatever starting up looked up
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
    assert len(asked) >= 3 if opentelemetry else asked == []


def test_the_label_tables_are_read_once_at_start_not_by_the_first_rounds_threads(
    game_settings: Settings, shared_scorer: Scorer
) -> None:
    """Each table read once, before any request: the reveal threads' first rounds would each
    read them at once (``functools.cache`` holds none back while another computes)."""
    tables = (
        labels._lemmas,
        labels._short_names,
        labels._qualified_names,
        labels._synsets,
        labels._index_by_synset,
        labels._indices_by_name,
    )
    for table in tables:
        table.cache_clear()
    with TestClient(create_app(game_settings, scorer=shared_scorer)):
        assert [table.cache_info().misses for table in tables] == [1] * len(tables)


def test_a_thread_that_rate_limits_and_updates_the_leaderboard_keeps_one_redis_connection(
    settings: Settings,
    database: Database,
    shared_scorer: Scorer,
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reveal thread hits the rate limit for every batch and updates the leaderboard after
    every round it ends: both on the one connection the thread keeps, not one each."""
    with database.session() as session:
        image_set, images = add_photos(session, tmp_path / "images", 1)
        campaign = change_state(session, add_campaign(session, image_set), "active")
        (player_id,) = add_players(session, 1)
        (round_id,) = add_rounds(session, campaign, images, [player_id])
        session.execute(update(Round).where(Round.id == round_id).values(outcome="timeout"))
    configured = {"redis_url": REDIS_TEST_URL, "redis_key_prefix": redis_prefix}
    runtime = build_runtime(settings.model_copy(update=configured), shared_scorer)
    assert runtime.redis is not None
    checkouts = pool_checkouts(monkeypatch, runtime.redis.connection_pool)

    def reveal_thread() -> None:
        runtime.limiter.hit(runtime.limits.reveals_per_player, str(player_id))
        runtime.leaderboard.player_changed(player_id)

    try:
        for _ in range(2):  # the first thread also has the client load the scripts into Redis
            checkouts.clear()
            thread = threading.Thread(target=reveal_thread)
            thread.start()
            thread.join()
        assert len(checkouts) == 1, checkouts  # the second thread's connection, for both
        scores = redis_key(redis_prefix, "leaderboard", GLOBAL_BOARD, "scores")
        assert runtime.redis.zscore(scores, f"{player_id:015d}") is not None  # it did reach Redis
    finally:
        runtime.close()
