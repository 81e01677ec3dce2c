"""A player's personal data, and forgetting it while keeping the anonymised strokes.

Personal data held about a player: the recruitment ids (source, participant, study and session
ids), the salted hash of their IP address, their browser's user agent and the display name they
chose. Forgetting a player clears all of it (the display name becomes a new generated one) and
bumps the player's token epoch, so that the cookies signed before stand for nobody; the
player's rounds and points stay, tied to the player's number only, which exports show as a keyed
pseudonym.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from clickme.players.models import Player
from clickme.players.names import generate_display_name

PERSONAL_COLUMNS = ("source", "external_id", "study_id", "session_id", "ip_hash", "user_agent")


@dataclass(frozen=True)
class ForgetReport:
    player_id: int
    cleared: tuple[str, ...]


def forget_player(session: Session, player_id: int) -> ForgetReport | None:
    """Clears the player's personal data; None when there is no such player."""
    player = session.get(Player, player_id)
    if player is None:
        return None
    cleared = tuple(column for column in PERSONAL_COLUMNS if getattr(player, column) is not None)
    for column in PERSONAL_COLUMNS:
        setattr(player, column, None)
    player.display_name = generate_display_name()
    player.token_epoch += 1
    session.flush()
    return ForgetReport(player_id=player.id, cleared=(*cleared, "display_name"))
