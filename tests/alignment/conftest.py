"""A played campaign for the alignment tests: 20 noise photos, 3 players' rounds on each."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.scoring import registry
from clickme.scoring.registry import ModelSpec, register_model
from tests.alignment.tiny import tiny_spec
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds

N_PHOTOS = 20  # any 20 consecutive ids hold two multiples of 10: held-out images for training


@dataclass(frozen=True)
class Played:
    database: Database
    settings: Settings
    campaign_id: int
    slug: str
    image_set: str
    image_ids: list[int]


@pytest.fixture
def played(database: Database, settings: Settings) -> Played:
    with database.session() as session:
        image_set, images = add_photos(session, settings.images_dir, N_PHOTOS)
        campaign = add_campaign(session, image_set)
        add_rounds(session, campaign, images, add_players(session, 5), seed=1)  # min_rounds
        ids = [image.id for image in images]
        played = Played(database, settings, campaign.id, campaign.slug, image_set.name, ids)
    return played


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    """A registered tiny model, for this test only."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    spec = tiny_spec(tmp_path)
    register_model(spec)
    return spec
