"""Synthetic campaign data straight into the database: photos, players, rounds and points.

Used by the export tests and by ``benchmarks/bench_exports.py``.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image as PilImage
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import CampaignCreate
from clickme.campaigns.service import create_campaign
from clickme.game.models import PointBatch, Round
from clickme.game.points import POINT_DTYPE
from clickme.images.models import Image, ImageSet
from clickme.players.models import Player
from clickme.scoring.tables import DnnModel

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
    session: Session,
    images_dir: Path,
    n: int,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    image_set: ImageSet | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
) -> tuple[ImageSet, list[Image]]:
    """n photos (class index i % 3) in a new image set (or ``image_set``): random-noise JPEGs
    of ``size``; or, with ``sizes``, image i is ``sizes[i]``, plain grey (quick to write at 12
    megapixels)."""
    rng = np.random.default_rng(seed)
    images_dir.mkdir(parents=True, exist_ok=True)
    if image_set is None:
        image_set = ImageSet(name=f"synthetic-{seed}")
        session.add(image_set)
        session.flush()
    images = []
    for index in range(n):
        file_name = f"synthetic-{seed}-{index}.jpg"
        width, height = sizes[index] if sizes is not None else size
        if sizes is None:
            pixels = np.frombuffer(rng.bytes(width * height * 3), np.uint8)
            photo = PilImage.fromarray(pixels.reshape(height, width, 3))
        else:
            photo = PilImage.new("RGB", (width, height), (128, 128, 128))
        photo.save(images_dir / file_name, quality=80)
        images.append(
            Image(
                image_set_id=image_set.id, sha256=f"{seed:08d}{index:056d}", file_name=file_name,
                original_name=f"IMG {seed}-{index}.JPG", width=width, height=height,
                synset="n01440764", class_index=index % 3,
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
    points = np.zeros(POINTS_PER_ROUND, dtype=POINT_DTYPE)
    points["x"], points["y"] = np.clip(xy, 0, [image.width - 1, image.height - 1]).T
    points["t"] = 20 * np.arange(POINTS_PER_ROUND)
    return points.tobytes()


def add_rounds(
    session: Session,
    campaign: Campaign,
    images: list[Image],
    player_ids: list[int],
    *,
    seed: int = 0,
    pointer_type: str = "mouse",
    outcome: str = "timeout",
    painter: Callable[[Image, np.random.Generator], bytes] = stroke,
    is_repeat: bool = False,
) -> list[int]:
    """One finished round per player and image, each with one batch of POINTS_PER_ROUND points
    from ``painter``; bulk inserts (a benchmark fills 100,000 rounds)."""
    rng = np.random.default_rng(seed)
    rounds, strokes = [], []
    for image in images:
        for player_id in player_ids:
            rounds.append(
                {
                    "player_id": player_id, "campaign_id": campaign.id,
                    "campaign_version": campaign.version, "image_id": image.id,
                    "model_id": campaign.model_id, "model_version": MODEL_VERSION,
                    "outcome": outcome, "last_seq": 1, "n_points": POINTS_PER_ROUND,
                    "pointer_type": pointer_type, "is_repeat": is_repeat,
                }
            )  # fmt: skip
            strokes.append(painter(image, rng))
    if not rounds:
        return []
    new_rounds = insert(Round).returning(Round.id, sort_by_parameter_order=True)
    round_ids = list(session.scalars(new_rounds, rounds))
    batches = [
        {"round_id": round_id, "seq": 1, "n_points": POINTS_PER_ROUND, "data": data,
         "received_ms": 100}
        for round_id, data in zip(round_ids, strokes, strict=True)
    ]  # fmt: skip
    session.execute(insert(PointBatch), batches)
    return round_ids


def left_edge(image: Image, rng: np.random.Generator) -> bytes:
    """Points within the leftmost 2% of a wide image: nothing of them reaches the centre crop."""
    points = np.zeros(POINTS_PER_ROUND, dtype=POINT_DTYPE)
    points["x"] = rng.uniform(0, image.width * 0.02, POINTS_PER_ROUND)
    points["y"] = rng.uniform(0, image.height - 1, POINTS_PER_ROUND)
    points["t"] = 20 * np.arange(POINTS_PER_ROUND)
    return points.tobytes()
