"""Player service functions."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.game.models import Round
from clickme.players.models import Player
from clickme.players.names import generate_display_name
from clickme.players.schemas import PlayerOut


def create_player(session: Session) -> Player:
    player = Player(display_name=generate_display_name())
    session.add(player)
    session.flush()
    return player


def get_player(session: Session, player_id: int) -> Player | None:
    return session.get(Player, player_id)


def rename_player(session: Session, player: Player, display_name: str) -> Player:
    player.display_name = display_name
    session.flush()
    return player


def player_summary(session: Session, player: Player) -> PlayerOut:
    """The player with their total score and count of finished rounds."""
    total, played = session.execute(
        select(func.coalesce(func.sum(Round.score), 0), func.count(Round.id)).where(
            Round.player_id == player.id, Round.outcome.is_not(None)
        )
    ).one()
    return PlayerOut(
        id=player.id, display_name=player.display_name, total_score=total, rounds_played=played
    )
