"""Retirement by reliability: an image leaves assignment once its human map is reliable enough.

When a round of a campaign with a target (``retire_at_reliability``) ends, its image's corrected
split-half is measured again over its valid rounds (``maps.valid``), off the request, on the
runtime's retirement worker, after the commit that ended the round. It is measured only when
the image has at least the map settings' ``min_rounds`` and two valid rounds and their number
changed since the last measurement; an image with more than ``MAX_PLAYERS_MEASURED`` players is
measured on a seeded random choice of them. The value and its number of rounds are stored in
``image_plays``; the image retires when the value reaches the target (whichever comes first
with the play count). A retired image is not measured again; a changed target applies at once
to the stored values (``campaigns.service``).
"""

from dataclasses import dataclass
from typing import TypeGuard

import numpy as np
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign, ImagePlays
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.maps.aggregate import MapSettings
from clickme.maps.progress import MAX_PLAYERS_MEASURED, capped
from clickme.maps.reliability import split_half
from clickme.maps.valid import ImageRounds, valid_rounds

RETIREMENT_SPLITS = 20


@dataclass(frozen=True)
class _Due:
    """An image to measure again: its campaign, the campaign's target and its valid rounds."""

    campaign_id: int
    target: float
    image: ImageRounds


# The ended round, its campaign's target and its image's counter (built once: it runs after every
# ended round).
_ROUND_AND_TARGET = (
    select(
        Round.outcome,
        Round.campaign_id,
        Round.image_id,
        Campaign.retire_at_reliability,
        ImagePlays.retired_by_reliability,
        ImagePlays.reliability_rounds,
    )
    .join(Campaign, Campaign.id == Round.campaign_id)
    .join(
        ImagePlays,
        (ImagePlays.campaign_id == Round.campaign_id) & (ImagePlays.image_id == Round.image_id),
    )
    .where(Round.id == bindparam("round_id"))
)


def _may_be_due(found: Row | None, settings: MapSettings) -> TypeGuard[Row]:
    """Whether the round (a row of ``_ROUND_AND_TARGET``) may make its image due: it counts for
    maps, in a campaign with a target, on an image not retired yet."""
    return (
        found is not None
        and found.outcome in settings.outcomes
        and found.retire_at_reliability is not None
        and not found.retired_by_reliability
    )


def _due(session: Session, found: Row, settings: MapSettings) -> _Due | None:
    """The round's image (``found``, which ``_may_be_due``) when it is due a measurement (see
    the module), else None."""
    image = next(
        valid_rounds(session, found.campaign_id, settings, image_ids=[found.image_id]), None
    )
    rounds = 0 if image is None else len(image.rounds_points)
    if image is None or rounds < 2 or rounds == found.reliability_rounds:
        return None
    return _Due(found.campaign_id, found.retire_at_reliability, image)


def _measure(due: _Due, settings: MapSettings) -> float | None:
    """The image's corrected split-half (seeded by campaign, image and rounds); None if flat."""
    image = due.image
    rng = np.random.default_rng([due.campaign_id, image.image_id, len(image.rounds_points)])
    measured = capped(image, MAX_PLAYERS_MEASURED, rng)
    found = split_half(
        measured.rounds_points, image.width, image.height, settings, RETIREMENT_SPLITS, rng
    )
    return None if found is None else found.corrected


def _store(session: Session, due: _Due, reliability: float | None) -> None:
    rounds = len(due.image.rounds_points)
    session.execute(
        update(ImagePlays)
        .where(
            ImagePlays.campaign_id == due.campaign_id,
            ImagePlays.image_id == due.image.image_id,
            ImagePlays.reliability_rounds < rounds,  # a later measurement is never undone
        )
        .values(
            reliability=reliability,
            reliability_rounds=rounds,
            retired_by_reliability=reliability is not None and reliability >= due.target,
        )
        .execution_options(synchronize_session=False)
    )


def measure_after_round(
    database: Database, round_id: int, settings: MapSettings = MapSettings()
) -> float | None:
    """Measure the round's image again if due, and store it; the value measured now (None when
    not measured, or when every split was flat). Reads, measures and writes in turn, holding no
    transaction while it measures. A round that cannot make its image due (most: see
    ``_may_be_due``) costs one query, in autocommit (no BEGIN and COMMIT of its own)."""
    found = database.row_of(_ROUND_AND_TARGET, {"round_id": round_id})
    if not _may_be_due(found, settings):
        return None
    with database.session() as session:
        due = _due(session, found, settings)
    if due is None:
        return None
    reliability = _measure(due, settings)
    with database.session() as session:
        _store(session, due, reliability)
    return reliability
