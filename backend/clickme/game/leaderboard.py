"""The leaderboard: players ranked by total score over finished rounds."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.game.models import Round
from clickme.game.schemas import Leaderboard, LeaderboardEntry
from clickme.players.models import Player


def _totals():
    return (
        select(
            Round.player_id.label("player_id"),
            func.sum(Round.score).label("score"),
            func.count(Round.id).label("rounds"),
        )
        .where(Round.outcome.is_not(None))
        .group_by(Round.player_id)
        .subquery()
    )


def leaderboard(session: Session, player_id: int | None, limit: int) -> Leaderboard:
    """The top players, and the asking player's own entry and rank."""
    totals = _totals()
    rows = session.execute(
        select(Player.display_name, totals.c.score, totals.c.rounds)
        .join(totals, totals.c.player_id == Player.id)
        .order_by(totals.c.score.desc(), Player.id)
        .limit(limit)
    ).all()
    top = [
        LeaderboardEntry(rank=i + 1, display_name=name, score=score, rounds=rounds)
        for i, (name, score, rounds) in enumerate(rows)
    ]
    return Leaderboard(top=top, me=_own_entry(session, totals, player_id))


def _own_entry(session: Session, totals, player_id: int | None) -> LeaderboardEntry | None:
    if player_id is None:
        return None
    mine = session.execute(
        select(Player.display_name, totals.c.score, totals.c.rounds)
        .join(totals, totals.c.player_id == Player.id)
        .where(Player.id == player_id)
    ).first()
    if mine is None:
        return None
    name, score, rounds = mine
    ahead = session.scalar(select(func.count()).select_from(totals).where(totals.c.score > score))
    return LeaderboardEntry(rank=(ahead or 0) + 1, display_name=name, score=score, rounds=rounds)
