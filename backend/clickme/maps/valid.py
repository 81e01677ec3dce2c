"""The valid rounds of a campaign, image by image, as the importance maps count them."""

from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from clickme.game.models import Round
from clickme.game.outcomes import valid_round
from clickme.game.points import xy_of
from clickme.game.service import points_by_round
from clickme.images.models import Image
from clickme.maps.aggregate import MapSettings
from clickme.players.service import excluded_player_ids

# Images whose rounds and points are loaded together: memory stays bounded by this many images.
IMAGES_PER_CHUNK = 100


@dataclass(frozen=True)
class ImageRounds:
    """An image's valid rounds: one per player, each (N, 2) native (x, y) points."""

    image_id: int
    width: int
    height: int
    class_index: int
    player_ids: list[int]
    rounds_points: list[np.ndarray]


def _valid_rounds_query(
    session: Session, campaign_id: int, settings: MapSettings, campaign_version: int | None
) -> Select:
    query = select(Round.id, Round.image_id, Round.player_id).where(
        Round.campaign_id == campaign_id,
        valid_round(settings),
        Round.player_id.not_in(excluded_player_ids(session, settings.exclude_flags)),
    )
    if campaign_version is not None:
        query = query.where(Round.campaign_version == campaign_version)
    if settings.first_round_only:
        earlier = aliased(Round)
        query = query.where(
            ~select(earlier.id)
            .where(
                earlier.player_id == Round.player_id,
                earlier.image_id == Round.image_id,
                earlier.id < Round.id,
            )
            .exists()
        )
    return query


def valid_rounds(
    session: Session,
    campaign_id: int,
    settings: MapSettings,
    campaign_version: int | None = None,
    image_ids: Collection[int] | None = None,
) -> Iterator[ImageRounds]:
    """Each image of the campaign with at least ``settings.min_rounds`` valid rounds, by image id.

    Valid: not a repeat, an outcome in ``settings.outcomes``, a player not excluded, at least
    ``settings.min_points`` points, and (``first_round_only``) the player's first round on the
    image in any campaign; only rounds of ``campaign_version`` when given; only the images of
    ``image_ids`` when given.
    """
    query = _valid_rounds_query(session, campaign_id, settings, campaign_version)
    if image_ids is not None:
        query = query.where(Round.image_id.in_(image_ids))
    valid = query.subquery()
    mapped_ids = _mapped_ids(session, valid, settings)
    for start in range(0, len(mapped_ids), IMAGES_PER_CHUNK):
        yield from _chunk(session, valid, mapped_ids[start : start + IMAGES_PER_CHUNK])


def mapped_image_ids(
    session: Session, campaign_id: int, settings: MapSettings, campaign_version: int | None = None
) -> list[int]:
    """The ids of the images ``valid_rounds`` yields, in order, without loading their rounds."""
    valid = _valid_rounds_query(session, campaign_id, settings, campaign_version).subquery()
    return _mapped_ids(session, valid, settings)


def _mapped_ids(session: Session, valid, settings: MapSettings) -> list[int]:
    return list(
        session.scalars(
            select(valid.c.image_id)
            .group_by(valid.c.image_id)
            .having(func.count() >= settings.min_rounds)
            .order_by(valid.c.image_id)
        )
    )


def _chunk(session: Session, valid, image_ids: list[int]) -> Iterator[ImageRounds]:
    rounds = session.execute(
        select(valid.c.id, valid.c.image_id, valid.c.player_id)
        .where(valid.c.image_id.in_(image_ids))
        .order_by(valid.c.image_id, valid.c.id)
    ).all()
    by_image: dict[int, list] = defaultdict(list)
    for row in rounds:
        by_image[row.image_id].append(row)
    points = points_by_round(session, [row.id for row in rounds])
    images = session.execute(
        select(Image.id, Image.width, Image.height, Image.class_index).where(
            Image.id.in_(image_ids)
        )
    ).all()
    for image in sorted(images, key=lambda image: image.id):
        image_rounds = by_image[image.id]
        yield ImageRounds(
            image_id=image.id,
            width=image.width,
            height=image.height,
            class_index=image.class_index,
            player_ids=[row.player_id for row in image_rounds],
            rounds_points=[xy_of(points[row.id]) for row in image_rounds],
        )


def valid_round_ids(
    session: Session,
    campaign_id: int,
    settings: MapSettings,
    image_ids: Collection[int],
    campaign_version: int | None = None,
    pointer_type: str | None = None,
) -> set[int]:
    """The ids of the images' valid rounds (as ``valid_rounds`` counts them, whatever the number
    per image), only those played with ``pointer_type`` when given."""
    query = _valid_rounds_query(session, campaign_id, settings, campaign_version).where(
        Round.image_id.in_(image_ids)
    )
    if pointer_type is not None:
        query = query.where(Round.pointer_type == pointer_type)
    return {row.id for row in session.execute(query)}
