"""A campaign's reliability for the console: ceiling and floor, the curve, the plays a target
needs, and the images retired by reliability.

The work is bounded: at most MEASURED_IMAGES of the images with a map (a random choice seeded by
the campaign and its finished rounds), each on at most ``MAX_PLAYERS_MEASURED`` of its players,
SPLITS split halves each (``maps.reliability.campaign_reliability``); the curve on at most
CURVE_IMAGES of those, CURVE_SPLITS random subsets per point (``maps.progress``). A measurement
is kept per campaign and reused until the campaign's finished rounds grow by more than
REMEASURE_GROWTH or the excluded players change. Measuring takes many seconds (about 25 s of
CPU for 100 images of 10 players), so it runs on a background thread of the API process, one
campaign at a time, while the console is answered at once with the latest measurement.
The estimate's target is the one asked for, else the campaign's own, else DEFAULT_TARGET.
"""

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign, ImagePlays
from clickme.campaigns.schemas import (
    CampaignReliability,
    PlaysNeeded,
    ReliabilityMeasurement,
    ReliabilityPoint,
    ReliabilityValue,
)
from clickme.core.background import BackgroundWorker
from clickme.core.db import Database, utcnow
from clickme.core.lru import LruCache
from clickme.game.models import Round
from clickme.game.outcomes import COUNTED
from clickme.maps.aggregate import MapSettings
from clickme.maps.progress import (
    MAX_PLAYERS_MEASURED,
    CurvePoint,
    capped,
    plays_estimate,
    reliability_curve,
)
from clickme.maps.reliability import SplitHalf, campaign_reliability
from clickme.maps.valid import ImageRounds, mapped_image_ids, valid_rounds
from clickme.players.models import PlayerFlag
from clickme.players.service import excluded_player_ids

# A usual bar for a reliable map (corrected split-half), when neither the campaign nor the
# console names a target.
DEFAULT_TARGET = 0.8
MEASURED_IMAGES = 100
SPLITS = 20
CURVE_IMAGES = 30
CURVE_SPLITS = 2
REMEASURE_GROWTH = 0.05
CAMPAIGNS_KEPT = 64


@dataclass(frozen=True)
class Measurement:
    """A campaign's reliability as measured when it had ``finished_rounds`` rounds that count
    and ``excluded_players`` players excluded. per_image: (corrected split-half, players it was
    measured on, players it has) of each measured image with a value."""

    finished_rounds: int
    excluded_players: int
    images_mapped: int
    images_measured: int
    per_image: list[tuple[float, int, int]]
    ceiling: SplitHalf | None
    floor: SplitHalf | None
    curve: list[CurvePoint]
    curve_images: int
    settings: MapSettings
    # The ceiling with the players who have an open flag left out, and how many were.
    ceiling_unflagged: SplitHalf | None = None
    flagged_players: int = 0
    measured_at: datetime = field(default_factory=utcnow)

    def fresh(self, finished_rounds: int, excluded_players: int) -> bool:
        """Whether it still stands for a campaign in this state."""
        grown = self.finished_rounds * (1 + REMEASURE_GROWTH)
        return (
            excluded_players == self.excluded_players
            and self.finished_rounds <= finished_rounds <= grown
        )


def _campaign_state(session: Session, campaign_id: int, settings: MapSettings) -> tuple[int, int]:
    """(the campaign's rounds with an outcome that counts, players excluded)."""
    finished = session.scalar(
        select(func.count(Round.id)).where(
            Round.campaign_id == campaign_id, Round.outcome.in_(settings.outcomes), COUNTED
        )
    )
    return finished or 0, len(excluded_player_ids(session))


@dataclass(frozen=True)
class _Sample:
    """The images to measure (at most MAX_PLAYERS_MEASURED players each, as measured) and the
    state of the campaign when they were read; players: image id -> the players it has."""

    finished_rounds: int
    excluded_players: int
    images_mapped: int
    images: list[ImageRounds]
    players: dict[int, int]


def _sample(session: Session, campaign_id: int, settings: MapSettings) -> _Sample:
    """A random choice of the images with a map, seeded by the campaign and its rounds."""
    finished, excluded = _campaign_state(session, campaign_id, settings)
    rng = np.random.default_rng([campaign_id, finished])
    mapped = mapped_image_ids(session, campaign_id, settings)
    chosen = [int(image_id) for image_id in rng.permutation(mapped)[:MEASURED_IMAGES]]
    loaded = {
        image.image_id: image
        for image in valid_rounds(session, campaign_id, settings, image_ids=chosen)
    }
    return _Sample(
        finished_rounds=finished,
        excluded_players=excluded,
        images_mapped=len(mapped),
        images=[capped(loaded[i], MAX_PLAYERS_MEASURED, rng) for i in chosen if i in loaded],
        players={image_id: len(image.rounds_points) for image_id, image in loaded.items()},
    )


def _ceiling_unflagged(
    database: Database, campaign_id: int, sample: _Sample, settings: MapSettings
) -> tuple[SplitHalf | None, int]:
    """The ceiling of the same images with every player who has an open flag left out, and
    how many of the campaign's players have one (0: nothing measured, the ceiling stands)."""
    with database.session() as session:
        kinds = tuple(
            session.scalars(
                select(PlayerFlag.kind).where(PlayerFlag.resolved.is_(False)).distinct()
            )
        )
        players = set(
            session.scalars(select(Round.player_id).where(Round.campaign_id == campaign_id))
        )
        flagged = (excluded_player_ids(session, kinds) - excluded_player_ids(session)) & players
        if not flagged:
            return None, 0
        unflagged = replace(settings, exclude_flags=kinds)
        image_ids = [image.image_id for image in sample.images]
        images = [
            capped(image, MAX_PLAYERS_MEASURED, np.random.default_rng([campaign_id, 2]))
            for image in valid_rounds(session, campaign_id, unflagged, image_ids=image_ids)
        ]
    rng = np.random.default_rng([campaign_id, sample.finished_rounds, 2])
    return campaign_reliability(images, unflagged, SPLITS, rng)["ceiling"], len(flagged)


def measure_campaign(
    database: Database, campaign_id: int, settings: MapSettings = MapSettings()
) -> Measurement:
    """The campaign's reliability, measured now within the bounds of the module (its rounds
    read first, then measured holding no transaction)."""
    with database.session() as session:
        sample = _sample(session, campaign_id, settings)
    rng = np.random.default_rng([campaign_id, sample.finished_rounds, 1])
    report = campaign_reliability(sample.images, settings, SPLITS, rng)
    per_image = [
        (value.corrected, len(image.rounds_points), sample.players[image.image_id])
        for image in sample.images
        if (value := report["per_image"][image.image_id]) is not None
    ]
    curve_images = sample.images[:CURVE_IMAGES]
    unflagged, flagged = _ceiling_unflagged(database, campaign_id, sample, settings)
    return Measurement(
        ceiling_unflagged=report["ceiling"] if flagged == 0 else unflagged,
        flagged_players=flagged,
        finished_rounds=sample.finished_rounds,
        excluded_players=sample.excluded_players,
        images_mapped=sample.images_mapped,
        images_measured=len(sample.images),
        per_image=per_image,
        ceiling=report["ceiling"],
        floor=report["floor"],
        curve=reliability_curve(curve_images, settings, CURVE_SPLITS, rng),
        curve_images=len(curve_images),
        settings=settings,
    )


class CampaignMeasurements:
    """The latest measurement of each campaign (at most CAMPAIGNS_KEPT); one that is no longer
    fresh is measured again on a background thread, one campaign at a time."""

    def __init__(self, database: Database, campaigns_kept: int = CAMPAIGNS_KEPT) -> None:
        self.database = database
        self._kept: LruCache[int, Measurement] = LruCache(campaigns_kept)
        self._worker = BackgroundWorker("reliability", campaigns_kept)

    def latest(
        self, session: Session, campaign_id: int, settings: MapSettings = MapSettings()
    ) -> tuple[Measurement | None, bool]:
        """The latest measurement (None before the first) and whether a newer one is under
        way (started now when the latest is not fresh)."""
        kept = self._kept.get(campaign_id)
        if kept is not None and kept.fresh(*_campaign_state(session, campaign_id, settings)):
            return kept, False
        self._worker.submit(campaign_id, partial(self._measure, campaign_id, settings))
        return kept, True

    def _measure(self, campaign_id: int, settings: MapSettings) -> None:
        self._kept.put(campaign_id, measure_campaign(self.database, campaign_id, settings))

    def close(self) -> None:
        """Finish the measurements under way."""
        self._worker.close()


def _value(found: SplitHalf | None) -> ReliabilityValue | None:
    if found is None:
        return None
    return ReliabilityValue(
        value=found.corrected, raw=found.raw, ci_low=found.ci_low, ci_high=found.ci_high
    )


def _whole(players: float) -> int | None:
    return None if math.isinf(players) else int(players)


def _plays_needed(
    measurement: Measurement, campaign: Campaign, target: float | None
) -> PlaysNeeded | None:
    """The estimate for the target asked for, else the campaign's, else DEFAULT_TARGET."""
    if target is not None:
        source = "query"
    elif campaign.retire_at_reliability is not None:
        target, source = campaign.retire_at_reliability, "campaign"
    else:
        target, source = DEFAULT_TARGET, "default"
    estimate = plays_estimate(measurement.per_image, target)
    if estimate is None:
        return None
    return PlaysNeeded(
        target=target,
        target_source=source,
        images=estimate.images,
        images_at_target=estimate.images_at_target,
        players_needed=_whole(estimate.players_needed),
        more_plays_per_image=_whole(estimate.more_plays),
    )


def _measurement_out(
    measurement: Measurement, campaign: Campaign, target: float | None
) -> ReliabilityMeasurement:
    return ReliabilityMeasurement(
        measured_at=measurement.measured_at,
        min_points=measurement.settings.min_points,
        min_rounds=measurement.settings.min_rounds,
        rounds_measured=measurement.finished_rounds,
        images_mapped=measurement.images_mapped,
        images_measured=measurement.images_measured,
        max_players_measured=MAX_PLAYERS_MEASURED,
        splits=SPLITS,
        ceiling=_value(measurement.ceiling),
        ceiling_without_flagged=_value(measurement.ceiling_unflagged),
        flagged_players=measurement.flagged_players,
        floor=_value(measurement.floor),
        curve=[
            ReliabilityPoint(
                players=point.players, reliability=point.reliability, images=point.images
            )
            for point in measurement.curve
        ],
        curve_images=measurement.curve_images,
        curve_splits=CURVE_SPLITS,
        estimate=_plays_needed(measurement, campaign, target),
    )


def reliability_report(
    session: Session,
    campaign: Campaign,
    measurements: CampaignMeasurements,
    target: float | None = None,
) -> CampaignReliability:
    """The console's reliability panel of the campaign (see the module): the latest
    measurement, whether a newer one is under way, and the images retired by reliability now."""
    measurement, measuring = measurements.latest(session, campaign.id)
    retired = session.scalar(
        select(func.count()).where(
            ImagePlays.campaign_id == campaign.id, ImagePlays.retired_by_reliability.is_(True)
        )
    )
    return CampaignReliability(
        measuring=measuring,
        measurement=None
        if measurement is None
        else _measurement_out(measurement, campaign, target),
        images_retired_by_reliability=retired or 0,
    )
