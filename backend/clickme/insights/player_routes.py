"""Staff routes for players: the review table (staff), exclusions and flags (admins)."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.core.deps import DbSession
from clickme.core.schemas import MAX_DB_ID, DbId
from clickme.insights.flags import refresh_flags, resolve_flag
from clickme.insights.review import player_detail, review_page
from clickme.players import service
from clickme.players.schemas import (
    ExclusionIn,
    ExclusionOut,
    FlagOut,
    FlagReport,
    PlayerDetail,
    PlayerReviewPage,
)
from clickme.scoring.deps import AppRuntime

router = APIRouter(prefix="/api/admin/players", tags=["admin"])


@router.get("")
def list_players(
    session: DbSession,
    runtime: AppRuntime,
    _staff: StaffMember,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    flagged: bool = False,
    campaign: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
) -> PlayerReviewPage:
    """A page of players; ``flagged``: only those with an open flag; ``campaign``: only those
    who played a round of that campaign."""
    return review_page(
        session, runtime.images, runtime.settings.images_dir, page, per_page, flagged, campaign
    )


@router.get("/{player_id}")
def get_player(
    player_id: DbId, session: DbSession, runtime: AppRuntime, _staff: StaffMember
) -> PlayerDetail:
    """One player: measures, flags, exclusion and every round they played."""
    return player_detail(session, runtime.images, runtime.settings.images_dir, player_id)


@router.post("/flags/refresh")
def refresh_all_flags(session: DbSession, runtime: AppRuntime, _admin: AdminUser) -> FlagReport:
    """Recompute every player's flags now (also `clickme players flag`)."""
    return refresh_flags(session, runtime.images, runtime.settings.images_dir)


@router.post("/{player_id}/flags/{kind}/resolve")
def resolve_player_flag(
    player_id: DbId, kind: str, session: DbSession, _admin: AdminUser
) -> FlagOut:
    return FlagOut.model_validate(resolve_flag(session, player_id, kind))


@router.post("/{player_id}/exclude", status_code=201)
def exclude(
    player_id: DbId, body: ExclusionIn, session: DbSession, admin: AdminUser
) -> ExclusionOut:
    exclusion = service.exclude_player(session, player_id, body.reason, admin.id)
    return ExclusionOut.model_validate(exclusion)


@router.delete("/{player_id}/exclude", status_code=204)
def lift_exclusion(player_id: DbId, session: DbSession, _admin: AdminUser) -> Response:
    service.lift_exclusion(session, player_id)
    return Response(status_code=204)
