"""Fixtures for the game API: the real app, the real DNN, the demo photos, on both databases."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.app import create_app, load_scorer
from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import CampaignUpdate
from clickme.campaigns.service import ensure_default_campaign, update_campaign
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.images.service import import_demo_set
from clickme.scoring.registry import get_model_spec
from clickme.scoring.scorer import Scorer
from clickme.scoring.service import ensure_model_row


@pytest.fixture(scope="session")
def shared_scorer(models_cache_dir: Path) -> Iterator[Scorer]:
    """One ONNX scorer for the whole session (the export is cached in a shared data dir)."""
    scorer = load_scorer(Settings(data_dir=models_cache_dir))
    yield scorer
    scorer.close()


@pytest.fixture
def game_settings(settings: Settings, database: Database) -> Settings:
    """Settings on an empty migrated database holding the demo photos and the default campaign."""
    with database.session() as session:
        report = import_demo_set(session, settings.images_dir)
        assert report.imported == 5
        model = ensure_model_row(session, get_model_spec(settings.model))
        from clickme.images.service import get_or_create_image_set

        ensure_default_campaign(session, get_or_create_image_set(session, "demo"), model)
    return settings


@pytest.fixture
def client(game_settings: Settings, shared_scorer: Scorer) -> Iterator[TestClient]:
    with TestClient(create_app(game_settings, scorer=shared_scorer)) as test_client:
        yield test_client


@pytest.fixture
def player(client: TestClient) -> TestClient:
    """The client after accepting consent (it holds the player cookie)."""
    response = client.post("/api/players", json={"consent": True})
    assert response.status_code == 201, response.text
    return client


def set_time_limit(database: Database, milliseconds: int) -> None:
    """Every campaign's time limit (a new version: rounds started from now on play by it)."""
    with database.session() as session:
        for campaign in session.scalars(select(Campaign)):
            update_campaign(session, campaign, CampaignUpdate(time_limit_ms=milliseconds))


def age(
    client: TestClient, database: Database, round_id: int, seconds: float, shown_too: bool = False
) -> None:
    """Moves the round's creation (and its photo's display) back in time, and has the app forget
    the round's facts it may keep (a display, once made, never moves: the app relies on it): time
    passes for the round without the test waiting, however slow the machine."""
    client.app.state.runtime.rounds.pop(round_id)  # type: ignore[attr-defined]
    with database.session() as session:
        round_ = session.get_one(Round, round_id)
        round_.started_at -= timedelta(seconds=seconds)
        if shown_too:
            assert round_.shown_at is not None
            round_.shown_at -= timedelta(seconds=seconds)
