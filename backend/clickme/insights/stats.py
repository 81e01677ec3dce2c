"""A campaign's pictures: plays over time, the DNN's success against revealed area, image maps."""

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.campaigns import service as campaigns
from clickme.campaigns.models import Campaign, ImagePlays
from clickme.campaigns.schemas import (
    CampaignStats,
    HourCount,
    ImageCard,
    ImageCardPage,
    RevealedBin,
)
from clickme.core.db import utcnow
from clickme.core.errors import NotFound
from clickme.core.lru import LruCache
from clickme.game.models import Round
from clickme.game.outcomes import Outcome
from clickme.images.labels import class_name
from clickme.images.models import Image
from clickme.maps.service import image_map, mapped_rounds, overlay_png, revealed_areas
from clickme.scoring.reveal import PreparedImageCache

HOURS_SHOWN = 7 * 24
REVEALED_BINS = 10
# The latest rounds measured for revealed area: bounds the first (uncached) computation.
MEASURED_ROUNDS = 2000


def plays_per_hour(session: Session, campaign_id: int, now: datetime) -> list[HourCount]:
    """Rounds started in each hour of the last 7 days, oldest first, empty hours included."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS_SHOWN - 1)
    started = session.scalars(
        select(Round.started_at).where(Round.campaign_id == campaign_id, Round.started_at >= first)
    )
    counts = [0] * HOURS_SHOWN
    for moment in started:
        hour = int((moment - first).total_seconds() // 3600)
        if 0 <= hour < HOURS_SHOWN:
            counts[hour] += 1
    return [
        HourCount(start=first + timedelta(hours=hour), rounds=count)
        for hour, count in enumerate(counts)
    ]


def measured_rounds(session: Session, campaign_id: int) -> list[Round]:
    """The campaign's latest mapped rounds (see ``clickme.maps``), at most MEASURED_ROUNDS."""
    query = mapped_rounds(session, campaign_id).order_by(Round.id.desc()).limit(MEASURED_ROUNDS)
    return list(session.scalars(query))


def revealed_bins(rounds: list[Round], areas: dict[int, float]) -> list[RevealedBin]:
    """The rounds in REVEALED_BINS equal bins of revealed area (the last one includes 1)."""
    counts = np.zeros(REVEALED_BINS, dtype=int)
    correct = np.zeros(REVEALED_BINS, dtype=int)
    for round_ in rounds:
        index = min(int(areas[round_.id] * REVEALED_BINS), REVEALED_BINS - 1)
        counts[index] += 1
        correct[index] += round_.outcome == Outcome.CORRECT
    return [
        RevealedBin(
            low=index / REVEALED_BINS,
            high=(index + 1) / REVEALED_BINS,
            rounds=int(counts[index]),
            correct=int(correct[index]),
            success_rate=float(correct[index] / counts[index]) if counts[index] else None,
        )
        for index in range(REVEALED_BINS)
    ]


def _median(areas: dict[int, float]) -> float | None:
    return float(np.median(list(areas.values()))) if areas else None


def median_revealed(
    session: Session,
    campaign_id: int,
    areas: LruCache[int, float],
    images: PreparedImageCache,
    images_dir: Path,
) -> float | None:
    """The median revealed area of the campaign's latest mapped rounds; None before any."""
    rounds = measured_rounds(session, campaign_id)
    return _median(revealed_areas(session, rounds, areas, images, images_dir))


def campaign_stats(
    session: Session,
    campaign: Campaign,
    areas: LruCache[int, float],
    images: PreparedImageCache,
    images_dir: Path,
) -> CampaignStats:
    rounds = measured_rounds(session, campaign.id)
    measured = revealed_areas(session, rounds, areas, images, images_dir)
    return CampaignStats(
        hours=plays_per_hour(session, campaign.id, utcnow()),
        revealed_bins=revealed_bins(rounds, measured),
        median_revealed=_median(measured),
        rounds_measured=len(rounds),
    )


def map_url(campaign_id: int, image_id: int, mapped: int) -> str:
    """The map's address; it changes with the number of rounds, so browsers never show an old
    one."""
    return f"/api/admin/campaigns/{campaign_id}/images/{image_id}/map.png?rounds={mapped}"


def image_cards(session: Session, campaign: Campaign, page: int, per_page: int) -> ImageCardPage:
    """The campaign's images (catch trials aside), the most mapped first."""
    mapped = (
        mapped_rounds(session, campaign.id)
        .with_only_columns(Round.image_id, func.count(Round.id).label("n"))
        .group_by(Round.image_id)
        .subquery()
    )
    in_campaign = (Image.image_set_id == campaign.image_set_id) & Image.is_catch.is_(False)
    total = session.scalar(select(func.count(Image.id)).where(in_campaign)) or 0
    rows = session.execute(
        select(
            Image,
            func.coalesce(ImagePlays.plays, 0),
            func.coalesce(ImagePlays.retired_by_reliability, False),
            func.coalesce(mapped.c.n, 0),
        )
        .outerjoin(
            ImagePlays,
            (ImagePlays.image_id == Image.id) & (ImagePlays.campaign_id == campaign.id),
        )
        .outerjoin(mapped, mapped.c.image_id == Image.id)
        .where(in_campaign)
        .order_by(func.coalesce(mapped.c.n, 0).desc(), Image.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    cards = [
        ImageCard(
            id=image.id,
            class_index=image.class_index,
            class_name=class_name(image.class_index),
            plays=plays,
            retired=plays >= campaign.plays_wanted_per_image or reliable,
            mapped_rounds=n,
            map_url=map_url(campaign.id, image.id, n) if n else None,
        )
        for image, plays, reliable, n in rows
    ]
    return ImageCardPage(total=total, page=page, per_page=per_page, images=cards)


def image_map_png(
    session: Session,
    campaign: Campaign,
    image_id: int,
    images: PreparedImageCache,
    images_dir: Path,
) -> bytes:
    """PNG of the image's evaluation crop under the campaign's current human map of it."""
    image = session.get(Image, image_id)
    if image is None or image.image_set_id != campaign.image_set_id:
        raise NotFound("image_not_found", f"no image {image_id} in this campaign")
    rounds = list(
        session.scalars(mapped_rounds(session, campaign.id).where(Round.image_id == image.id))
    )
    if not rounds:
        raise NotFound("no_map_yet", f"no finished round of image {image_id} yet")
    prepared = images.get(images_dir / image.file_name, campaigns.reveal_rule(campaign))
    return overlay_png(prepared.pixels, image_map(session, image, rounds))
