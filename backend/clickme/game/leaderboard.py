"""The leaderboard: players ranked by total score over finished rounds (ties share a rank)."""

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from clickme.game.models import Round
from clickme.game.schemas import Leaderboard, LeaderboardEntry
from clickme.players.models import Player


def _ranked_totals() -> Subquery:
    totals = (
        select(
            Round.player_id.label("player_id"),
            func.sum(Round.score).label("score"),
            func.count(Round.id).label("rounds"),
        )
        .where(Round.outcome.is_not(None))
        .group_by(Round.player_id)
        .subquery()
    )
    return (
        select(
            totals,
            Player.display_name,
            func.rank().over(order_by=totals.c.score.desc()).label("rank"),
        )
        .join(Player, Player.id == totals.c.player_id)
        .subquery()
    )


def _entry(row, player_id: int | None) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=row.rank,
        display_name=row.display_name,
        score=row.score,
        rounds=row.rounds,
        is_me=row.player_id == player_id,
    )


def leaderboard(session: Session, player_id: int | None, limit: int) -> Leaderboard:
    """The top players, and the asking player's own entry and rank."""
    ranked = _ranked_totals()
    top = session.execute(
        select(ranked).order_by(ranked.c.rank, ranked.c.player_id).limit(limit)
    ).all()
    mine = None
    if player_id is not None:
        mine = session.execute(select(ranked).where(ranked.c.player_id == player_id)).first()
    return Leaderboard(
        top=[_entry(row, player_id) for row in top],
        me=_entry(mine, player_id) if mine else None,
    )
