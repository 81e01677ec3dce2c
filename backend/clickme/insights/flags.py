"""Automatic flags kept in the database: recomputed from the measures, idempotently."""

from collections.abc import Collection
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.core.errors import NotFound
from clickme.game.models import Round
from clickme.insights.quality import AUTOMATIC_FLAGS, FlagRules, flags_for, measure_players
from clickme.players.models import PlayerFlag
from clickme.players.schemas import FlagReport
from clickme.players.service import note_standing_changed
from clickme.scoring.reveal import PreparedImageCache

PLAYERS_PER_PASS = 500  # bounds the size of one measuring pass


def _sync_flags(session: Session, player_id: int, wanted: dict[str, str]) -> tuple[int, int]:
    """Make the player's flags match: new ones raised, reasons updated, ones no longer true
    cleared; a flag staff resolved stays resolved. (raised, cleared)."""
    existing = {
        flag.kind: flag
        for flag in session.scalars(select(PlayerFlag).where(PlayerFlag.player_id == player_id))
    }
    raised = cleared = 0
    for kind, reason in wanted.items():
        flag = existing.get(kind)
        if flag is None:
            session.add(PlayerFlag(player_id=player_id, kind=kind, reason=reason))
            raised += 1
        elif not flag.resolved:
            flag.reason = reason
    for kind, flag in existing.items():
        if kind in AUTOMATIC_FLAGS and kind not in wanted and not flag.resolved:
            session.delete(flag)
            cleared += 1
    if raised or cleared:
        note_standing_changed(session, player_id)
    return raised, cleared


def refresh_flags(
    session: Session,
    images: PreparedImageCache,
    images_dir: Path,
    player_ids: Collection[int] | None = None,
    rules: FlagRules = FlagRules(),
) -> FlagReport:
    """(Re)compute the flags of the given players (default: everyone with a finished round)."""
    if player_ids is None:
        player_ids = session.scalars(
            select(Round.player_id).where(Round.outcome.is_not(None)).distinct()
        ).all()
    ordered = sorted(player_ids)
    raised = cleared = 0
    for start in range(0, len(ordered), PLAYERS_PER_PASS):
        chunk = ordered[start : start + PLAYERS_PER_PASS]
        measured = measure_players(session, images, images_dir, chunk, rules)
        for player_id, measures in measured.items():
            up, down = _sync_flags(session, player_id, flags_for(measures, rules))
            raised, cleared = raised + up, cleared + down
    session.flush()
    return FlagReport(players=len(ordered), raised=raised, cleared=cleared)


def raise_flag(session: Session, player_id: int, kind: str, reason: str) -> None:
    """A flag raised by a rule outside the measures (kept until staff resolve it); an open one
    of the kind takes the new reason, a resolved one stays resolved."""
    flag = session.scalar(
        select(PlayerFlag).where(PlayerFlag.player_id == player_id, PlayerFlag.kind == kind)
    )
    if flag is None:
        session.add(PlayerFlag(player_id=player_id, kind=kind, reason=reason))
        note_standing_changed(session, player_id)
    elif not flag.resolved:
        flag.reason = reason
    session.flush()


def resolve_flag(session: Session, player_id: int, kind: str) -> PlayerFlag:
    """Staff reviewed the flag: it stays, marked resolved, and is not raised again."""
    flag = session.scalar(
        select(PlayerFlag).where(PlayerFlag.player_id == player_id, PlayerFlag.kind == kind)
    )
    if flag is None:
        raise NotFound("flag_not_found", f"player {player_id} has no {kind!r} flag")
    flag.resolved = True
    session.flush()
    note_standing_changed(session, player_id)
    return flag
