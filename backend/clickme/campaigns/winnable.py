"""Images nobody can win: those the campaign's DNN does not get in its top-k even on the whole
photo. Measured in the background when a campaign is activated (``ImagePlays.winnable``, batch
by batch, so the console shows the progress); a campaign may leave them out of assignment."""

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign, ImagePlays
from clickme.campaigns.schemas import UnwinnableImage, UnwinnableReport
from clickme.core.db import Database
from clickme.images.labels import class_name
from clickme.images.models import Image
from clickme.scoring.evaluate import top_k_hits
from clickme.scoring.scorer import Scorer
from clickme.scoring.tables import DnnModel

BATCH_SIZE = 32


def measure_winnable(
    database: Database,
    campaign_id: int,
    images_dir: Path,
    scorer_for: Callable[[str], Scorer],
) -> int:
    """Measure every image of the campaign not measured yet, storing each batch as it is done;
    how many were measured."""
    with database.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        top_k = campaign.top_k
        model_name = session.get_one(DnnModel, campaign.model_id).name
        rows = session.execute(
            select(Image.id, Image.file_name, Image.class_index)
            .join(ImagePlays, ImagePlays.image_id == Image.id)
            .where(ImagePlays.campaign_id == campaign_id, ImagePlays.winnable.is_(None))
            .order_by(Image.id)
        ).all()
    items = [(images_dir / row.file_name, row.class_index) for row in rows]
    ids = iter([row.id for row in rows])
    scorer = scorer_for(model_name)
    for hits in top_k_hits(scorer, items, top_k, BATCH_SIZE):
        with database.session() as session:
            for hit, image_id in zip(hits, ids, strict=False):
                session.execute(
                    update(ImagePlays)
                    .where(ImagePlays.campaign_id == campaign_id, ImagePlays.image_id == image_id)
                    .values(winnable=hit)
                )
    return len(rows)


def unwinnable_report(session: Session, campaign: Campaign) -> UnwinnableReport:
    """How far the measurement is, and the images found unwinnable so far."""
    measured, total = session.execute(
        select(func.count(case((ImagePlays.winnable.is_not(None), 1))), func.count()).where(
            ImagePlays.campaign_id == campaign.id
        )
    ).one()
    images = session.execute(
        select(Image.id, Image.class_index, Image.original_name)
        .join(ImagePlays, ImagePlays.image_id == Image.id)
        .where(ImagePlays.campaign_id == campaign.id, ImagePlays.winnable.is_(False))
        .order_by(Image.id)
    ).all()
    return UnwinnableReport(
        measured=measured,
        total=total,
        left_out=campaign.leave_out_unwinnable,
        images=[
            UnwinnableImage(
                id=row.id, class_name=class_name(row.class_index), file_name=row.original_name
            )
            for row in images
        ],
    )
