"""A small world for campaign tests: an image set (rows only), a model, players."""

import uuid
from dataclasses import dataclass

import pytest

from clickme.campaigns import service
from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import CampaignCreate
from clickme.core.db import Database
from clickme.images.models import Image, ImageSet
from clickme.maps.aggregate import MapSettings
from clickme.players.models import Player
from clickme.scoring.tables import DnnModel


@dataclass(frozen=True)
class World:
    database: Database
    image_set_id: int
    model_id: int
    image_ids: list[int]

    def add_images(self, count: int, is_catch: bool = False) -> list[int]:
        with self.database.session() as session:
            images = [
                Image(
                    image_set_id=self.image_set_id,
                    sha256=uuid.uuid4().hex * 2,
                    file_name=f"{i}.jpg",
                    original_name=f"{i}.jpg",
                    width=100,
                    height=80,
                    synset="n01443537",
                    class_index=1,
                    is_catch=is_catch,
                )
                for i in range(count)
            ]
            session.add_all(images)
            session.flush()
            ids = [image.id for image in images]
        if not is_catch:
            self.image_ids.extend(ids)
        return ids

    def add_players(self, count: int) -> list[int]:
        with self.database.session() as session:
            players = [Player(display_name=f"p{i}") for i in range(count)]
            session.add_all(players)
            session.flush()
            return [player.id for player in players]

    def campaign(self, state: str = "active", **settings: object) -> int:
        """A campaign on the world's image set, moved to the state (the slug is unique)."""
        with self.database.session() as session:
            number = len(service.list_campaigns(session)) + 1
            body = CampaignCreate(
                name=f"Campaign {number}",
                slug=f"campaign-{number}",
                image_set_id=self.image_set_id,
                model_id=self.model_id,
                **settings,
            )
            campaign = service.create_campaign(session, body)
            if state != "draft":
                service.change_state(session, campaign, "active")
            if state not in ("draft", "active"):
                service.change_state(session, campaign, state)
            return campaign.id


# The map rules rounds are played by in these tests, and no grace after a round's time.
RULE = MapSettings()
GRACE_MS = 0
START_BOUND_S = 20.0  # the default CLICKME_ROUND_START_BOUND_S


def load(session, campaign_id: int) -> Campaign:
    return service.get_campaign(session, campaign_id)


@pytest.fixture
def world(database: Database) -> World:
    """An image set with three images and a registered model (rows only, no files)."""
    with database.session() as session:
        image_set = ImageSet(name="set")
        model = DnnModel(name="m", version="1", architecture="a", weights_sha256="0" * 64)
        session.add_all([image_set, model])
        session.flush()
        built = World(database, image_set.id, model.id, [])
    built.add_images(3)
    return built
