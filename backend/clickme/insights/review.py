"""The staff's player table: each player with recruitment, quality measures, flags, exclusion;
and one player's page, with their rounds."""

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.game.models import Round
from clickme.images.labels import class_name
from clickme.images.models import Image
from clickme.insights.quality import measure_players
from clickme.players.models import Player, PlayerExclusion, PlayerFlag
from clickme.players.schemas import (
    ExclusionOut,
    FlagOut,
    PlayerDetail,
    PlayerReview,
    PlayerReviewPage,
    PlayerRound,
)
from clickme.players.service import require_player
from clickme.scoring.reveal import PreparedImageCache


def review_page(
    session: Session,
    images: PreparedImageCache,
    images_dir: Path,
    page: int,
    per_page: int,
    flagged_only: bool = False,
    campaign_id: int | None = None,
) -> PlayerReviewPage:
    """One page of players by id, measured now; ``flagged_only``: those with an open flag;
    ``campaign_id``: those who played a round of that campaign."""
    query = select(Player)
    if flagged_only:
        open_flags = select(PlayerFlag.player_id).where(PlayerFlag.resolved.is_(False))
        query = query.where(Player.id.in_(open_flags))
    if campaign_id is not None:
        played = select(Round.player_id).where(Round.campaign_id == campaign_id)
        query = query.where(Player.id.in_(played))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    players = session.scalars(
        query.order_by(Player.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return PlayerReviewPage(
        total=total,
        page=page,
        per_page=per_page,
        players=_reviews(session, images, images_dir, players),
    )


def player_detail(
    session: Session, images: PreparedImageCache, images_dir: Path, player_id: int
) -> PlayerDetail:
    """One player as in the table (404 ``player_not_found`` for none), with their rounds."""
    player = require_player(session, player_id)
    [review] = _reviews(session, images, images_dir, [player])
    return PlayerDetail(**review.model_dump(), rounds=player_rounds(session, player_id))


def player_rounds(session: Session, player_id: int) -> list[PlayerRound]:
    """Every round of the player, newest first, with its photo's class and its campaign."""
    rows = session.execute(
        select(Round, Image.class_index, Campaign.name)
        .join(Image, Image.id == Round.image_id)
        .join(Campaign, Campaign.id == Round.campaign_id)
        .where(Round.player_id == player_id)
        .order_by(Round.id.desc())
    ).all()
    return [
        PlayerRound(
            id=round_.id,
            image_id=round_.image_id,
            class_name=class_name(class_index),
            campaign_id=round_.campaign_id,
            campaign_name=campaign_name,
            outcome=round_.outcome,
            is_repeat=round_.is_repeat,
            score=round_.score,
            n_points=round_.n_points,
            started_at=round_.started_at,
            duration_ms=_duration_ms(round_),
        )
        for round_, class_index, campaign_name in rows
    ]


def _duration_ms(round_: Round) -> int | None:
    if round_.ended_at is None:
        return None
    began = round_.shown_at or round_.started_at
    return max(0, round((round_.ended_at - began).total_seconds() * 1000))


def _reviews(
    session: Session, images: PreparedImageCache, images_dir: Path, players: Sequence[Player]
) -> list[PlayerReview]:
    """The players with their measures (measured now), flags and exclusion."""
    ids = [player.id for player in players]
    measures = measure_players(session, images, images_dir, ids)
    flags = session.scalars(
        select(PlayerFlag).where(PlayerFlag.player_id.in_(ids)).order_by(PlayerFlag.id)
    ).all()
    exclusions = {
        exclusion.player_id: exclusion
        for exclusion in session.scalars(
            select(PlayerExclusion).where(PlayerExclusion.player_id.in_(ids))
        )
    }
    return [
        PlayerReview(
            id=player.id,
            display_name=player.display_name,
            created_at=player.created_at,
            source=player.source,
            external_id=player.external_id,
            study_id=player.study_id,
            session_id=player.session_id,
            measures=measures[player.id],
            flags=[FlagOut.model_validate(f) for f in flags if f.player_id == player.id],
            exclusion=(
                ExclusionOut.model_validate(exclusions[player.id])
                if player.id in exclusions
                else None
            ),
        )
        for player in players
    ]
