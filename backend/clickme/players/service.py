"""Player service functions: creation (recognising returning participants), exclusions."""

from collections.abc import Callable, Collection

from sqlalchemy import CompoundSelect, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from clickme.core.db import after_commit, note_for_commit
from clickme.core.errors import Conflict, NotFound, NotSignedIn
from clickme.players.identity import verify_player_token
from clickme.players.models import Player, PlayerExclusion, PlayerFlag
from clickme.players.names import generate_display_name
from clickme.players.recruitment import Recruitment

USER_AGENT_KEPT = 500
# Open flags that keep a player off every leaderboard (as an exclusion does).
HIDING_FLAGS = ("bot_timing", "paints_everything", "no_effort")
# session.info key: the players whose exclusion or flags the session's transaction changed.
_STANDING_CHANGED = "clickme.standing_changed"


def _recruited_player(session: Session, recruitment: Recruitment) -> Player | None:
    return session.scalar(
        select(Player).where(
            Player.source == recruitment.source, Player.external_id == recruitment.external_id
        )
    )


def _remember_visit(player: Player, recruitment: Recruitment) -> None:
    """A returning participant keeps their player; the latest study and session are kept."""
    player.study_id = recruitment.study_id or player.study_id
    player.session_id = recruitment.session_id or player.session_id


def create_player(
    session: Session,
    recruitment: Recruitment | None = None,
    ip_hash: str | None = None,
    user_agent: str | None = None,
) -> tuple[Player, bool]:
    """A new player, or the one this participant already is: (player, created)."""
    if recruitment is not None and (known := _recruited_player(session, recruitment)):
        _remember_visit(known, recruitment)
        session.flush()
        return known, False
    player = Player(
        display_name=generate_display_name(),
        ip_hash=ip_hash,
        user_agent=user_agent[:USER_AGENT_KEPT] if user_agent else None,
    )
    if recruitment is not None:
        player.source = recruitment.source
        player.external_id = recruitment.external_id
        player.study_id = recruitment.study_id
        player.session_id = recruitment.session_id
    try:
        with session.begin_nested():
            session.add(player)
    except IntegrityError:  # the same participant, created by a concurrent request
        if recruitment is None or (known := _recruited_player(session, recruitment)) is None:
            raise
        _remember_visit(known, recruitment)
        session.flush()
        return known, False
    return player, True


def recruitment_of(player: Player) -> Recruitment | None:
    """Where the player was recruited (for completion redirects), None if they came on their own."""
    if player.source is None or player.external_id is None:
        return None
    return Recruitment(
        source=player.source,  # type: ignore[arg-type]
        external_id=player.external_id,
        study_id=player.study_id,
        session_id=player.session_id,
    )


def get_player(session: Session, player_id: int) -> Player | None:
    return session.get(Player, player_id)


def player_of_token(session: Session, secret: str, token: str | None) -> int | None:
    """The player a cookie stands for: signed by us, for a player who exists, in their current
    token epoch (a forgotten player's old cookies stand for nobody); else None."""
    signed = verify_player_token(secret, token)
    if signed is None:
        return None
    return signed.player_id if _is_current(session, signed.player_id, signed.epoch) else None


def _is_current(session: Session, player_id: int, token_epoch: int) -> bool:
    """Whether the player exists and ``token_epoch`` is theirs now (forgetting moves it on)."""
    epoch = session.connection().scalar(_TOKEN_EPOCH, {"player_id": player_id})
    return epoch == token_epoch


_TOKEN_EPOCH = select(Player.token_epoch).where(Player.id == bindparam("player_id"))


def require_token_epoch(session: Session, player_id: int, token_epoch: int) -> None:
    """401 ``no_player`` unless the cookie's token epoch is the player's current one (a
    forgotten player's old cookies stand for nobody)."""
    require_epoch(session.connection().scalar(_TOKEN_EPOCH, {"player_id": player_id}), token_epoch)


def require_epoch(current: int | None, token_epoch: int) -> None:
    """``require_token_epoch`` on the player's current epoch as read (None: no such player)."""
    if current != token_epoch:
        raise NotSignedIn("no_player", "unknown player: accept the consent screen again")


def require_player(session: Session, player_id: int) -> Player:
    player = get_player(session, player_id)
    if player is None:
        raise NotFound("player_not_found", f"no player {player_id}")
    return player


def rename_player(session: Session, player: Player, display_name: str) -> Player:
    player.display_name = display_name
    session.flush()
    return player


def exclude_player(
    session: Session, player_id: int, reason: str, excluded_by: int | None
) -> PlayerExclusion:
    """Leave the player out of every export from now on; 409 if already excluded."""
    require_player(session, player_id)
    if session.scalar(select(PlayerExclusion).where(PlayerExclusion.player_id == player_id)):
        raise Conflict("already_excluded", f"player {player_id} is already excluded")
    exclusion = PlayerExclusion(player_id=player_id, reason=reason, excluded_by=excluded_by)
    session.add(exclusion)
    session.flush()
    note_standing_changed(session, player_id)
    return exclusion


def lift_exclusion(session: Session, player_id: int) -> None:
    """Take the player back into exports; 404 if they were not excluded."""
    exclusion = session.scalar(
        select(PlayerExclusion).where(PlayerExclusion.player_id == player_id)
    )
    if exclusion is None:
        raise NotFound("not_excluded", f"player {player_id} is not excluded")
    session.delete(exclusion)
    session.flush()
    note_standing_changed(session, player_id)


def excluded_player_ids(session: Session, flags: Collection[str] = ()) -> set[int]:
    """Every excluded player (exports leave their rounds out), and every player with an open
    flag of one of these kinds."""
    excluded = set(session.scalars(select(PlayerExclusion.player_id)))
    if flags:
        excluded |= set(
            session.scalars(
                select(PlayerFlag.player_id).where(
                    PlayerFlag.kind.in_(flags), PlayerFlag.resolved.is_(False)
                )
            )
        )
    return excluded


def hidden_player_ids() -> CompoundSelect[int]:
    """The players no leaderboard shows: excluded, or with an open hiding flag."""
    # one comparison per kind, not ``IN``: SQLAlchemy writes an ``IN`` list's SQL at each
    # execution, which the raw path (``Database.rows_of``, after every round) refuses
    hiding = or_(*(PlayerFlag.kind == kind for kind in HIDING_FLAGS))
    flagged = select(PlayerFlag.player_id).where(hiding, PlayerFlag.resolved.is_(False))
    return select(PlayerExclusion.player_id).union(flagged)


def note_standing_changed(session: Session, player_id: int) -> None:
    """The player's exclusion or flags changed in this transaction (see
    ``on_standing_changed``)."""
    note_for_commit(session, _STANDING_CHANGED, player_id)


def on_standing_changed(sessions: sessionmaker, listener: Callable[[set[int]], None]) -> None:
    """After each commit that changed players' exclusions or flags, ``listener`` gets them."""
    after_commit(sessions, _STANDING_CHANGED, lambda noted: listener(set(noted)))
