"""Synthetic campaign data straight into the database: photos, players, rounds and points.

Used by the export tests and by ``benchmarks/bench_exports.py``.
"""

from pathlib import Path

import numpy as np
from PIL import Image as PilImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import CampaignCreate
from clickme.campaigns.service import create_campaign
from clickme.game.models import PointBatch, Round
from clickme.game.points import pack_points
from clickme.images.models import Image, ImageSet
from clickme.models.models import DnnModel
from clickme.players.models import Player

MODEL_VERSION = "test-1"
POINTS_PER_ROUND = 40


def add_campaign(session: Session, image_set: ImageSet, slug: str = "study") -> Campaign:
    model = session.scalar(select(DnnModel).where(DnnModel.version == MODEL_VERSION))
    if model is None:
        model = DnnModel(
            name="test-net", version=MODEL_VERSION, architecture="none", weights_sha256="0" * 64
        )
        session.add(model)
        session.flush()
    body = CampaignCreate(name=slug, slug=slug, image_set_id=image_set.id, model_id=model.id)
    return create_campaign(session, body)


def add_photos(
    session: Session, images_dir: Path, n: int, size: tuple[int, int] = (320, 240), seed: int = 0
) -> tuple[ImageSet, list[Image]]:
    """n random-noise JPEG photos (class index i % 3) in a new image set."""
    rng = np.random.default_rng(seed)
    images_dir.mkdir(parents=True, exist_ok=True)
    image_set = ImageSet(name=f"synthetic-{seed}")
    session.add(image_set)
    session.flush()
    images = []
    for index in range(n):
        file_name = f"synthetic-{seed}-{index}.jpg"
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        PilImage.fromarray(pixels).save(images_dir / file_name, quality=80)
        images.append(
            Image(
                image_set_id=image_set.id, sha256=f"{seed:08d}{index:056d}", file_name=file_name,
                original_name=file_name, width=size[0], height=size[1], synset="n01440764",
                class_index=index % 3,
            )
        )  # fmt: skip
    session.add_all(images)
    session.flush()
    return image_set, images


def add_players(session: Session, n: int) -> list[int]:
    players = [Player(display_name=f"player {index}") for index in range(n)]
    session.add_all(players)
    session.flush()
    return [player.id for player in players]


def stroke(image: Image, rng: np.random.Generator) -> bytes:
    """Points around the image's upper-left third, with times."""
    centre = np.array([image.width / 3, image.height / 3])
    xy = centre + rng.normal(0, image.height / 10, size=(POINTS_PER_ROUND, 2))
    xy = np.clip(xy, 0, [image.width - 1, image.height - 1])
    return pack_points([(float(x), float(y), 20 * i) for i, (x, y) in enumerate(xy)])


def add_rounds(
    session: Session,
    campaign: Campaign,
    images: list[Image],
    player_ids: list[int],
    *,
    seed: int = 0,
    pointer_type: str = "mouse",
    outcome: str = "timeout",
) -> list[int]:
    """One finished round per player and image, each with one batch of points."""
    rng = np.random.default_rng(seed)
    rounds, strokes = [], []
    for image in images:
        for player_id in player_ids:
            rounds.append(
                Round(
                    player_id=player_id, campaign_id=campaign.id,
                    campaign_version=campaign.version, image_id=image.id,
                    model_id=campaign.model_id, model_version=MODEL_VERSION, outcome=outcome,
                    last_seq=1, n_points=POINTS_PER_ROUND, pointer_type=pointer_type,
                )
            )  # fmt: skip
            strokes.append(stroke(image, rng))
    session.add_all(rounds)
    session.flush()
    session.add_all(
        PointBatch(round_id=round_.id, seq=1, n_points=POINTS_PER_ROUND, data=data, received_ms=100)
        for round_, data in zip(rounds, strokes, strict=True)
    )
    session.flush()
    return [round_.id for round_ in rounds]
