"""The staff's player table: each player with recruitment, quality measures, flags, exclusion."""

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.insights.quality import measure_players
from clickme.players.models import Player, PlayerExclusion, PlayerFlag
from clickme.players.schemas import ExclusionOut, FlagOut, PlayerReview, PlayerReviewPage
from clickme.scoring.reveal import PreparedImageCache


def review_page(
    session: Session,
    images: PreparedImageCache,
    images_dir: Path,
    page: int,
    per_page: int,
    flagged_only: bool = False,
) -> PlayerReviewPage:
    """One page of players by id, measured now; ``flagged_only``: those with an open flag."""
    query = select(Player)
    if flagged_only:
        open_flags = select(PlayerFlag.player_id).where(PlayerFlag.resolved.is_(False))
        query = query.where(Player.id.in_(open_flags))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    players = session.scalars(
        query.order_by(Player.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
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
    return PlayerReviewPage(
        total=total,
        page=page,
        per_page=per_page,
        players=[
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
        ],
    )
