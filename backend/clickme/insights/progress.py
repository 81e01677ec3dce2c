"""How far each campaign is, for the staff's campaign pages: images retired of total, rounds,
recent plays and players, the DNN's success."""

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign, ImagePlays
from clickme.campaigns.schemas import CampaignProgress
from clickme.core.db import utcnow
from clickme.game.models import Round
from clickme.game.outcomes import COUNTED, PLAYED_OUTCOMES, Outcome
from clickme.images.models import Image


def campaign_progress(
    session: Session, campaigns: Sequence[Campaign]
) -> dict[int, CampaignProgress]:
    """Progress of each campaign: images retired of total, rounds, recent plays and players."""
    ids = [c.id for c in campaigns]
    now = utcnow()
    finished = Round.outcome.in_(PLAYED_OUTCOMES) & COUNTED
    round_rows = session.execute(
        select(
            Round.campaign_id,
            func.count(Round.id),
            func.count(case((Round.started_at >= now - timedelta(hours=1), Round.id))),
            func.count(
                func.distinct(
                    case((Round.started_at >= now - timedelta(minutes=5), Round.player_id))
                )
            ),
            func.count(case((finished, Round.id))),
            func.count(case((Round.outcome == Outcome.CORRECT, Round.id))),
        )
        .where(Round.campaign_id.in_(ids))
        .group_by(Round.campaign_id)
    )
    rounds = {row[0]: row[1:] for row in round_rows}
    progress = {}
    for campaign in campaigns:
        total, retired = _image_counts(session, campaign)
        n, last_hour, active, n_finished, n_correct = rounds.get(campaign.id, (0, 0, 0, 0, 0))
        progress[campaign.id] = CampaignProgress(
            images_total=total,
            images_retired=retired,
            rounds=n,
            plays_last_hour=last_hour,
            active_players=active,
            dnn_success_rate=n_correct / n_finished if n_finished else None,
        )
    return progress


def _image_counts(session: Session, campaign: Campaign) -> tuple[int, int]:
    """The campaign's images (catch trials aside) and how many retired (play count reached or
    retired by reliability)."""
    retired = (ImagePlays.plays >= campaign.plays_wanted_per_image) | (
        ImagePlays.retired_by_reliability.is_(True)
    )
    total, done = session.execute(
        select(func.count(Image.id), func.count(case((retired, Image.id))))
        .outerjoin(
            ImagePlays,
            (ImagePlays.image_id == Image.id) & (ImagePlays.campaign_id == campaign.id),
        )
        .where(Image.image_set_id == campaign.image_set_id, Image.is_catch.is_(False))
    ).one()
    return total, done
