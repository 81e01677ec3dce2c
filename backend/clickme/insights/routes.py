"""Routes of the read side. Campaigns: those that show a campaign with its progress (the staff's
list; read, create, change settings and state), a campaign's pictures (statistics, reliability,
its images and their human maps), and the participants' completion code. Players (staff): the
review table, exclusions and flags (admins)."""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.accounts.service import emails_by_id
from clickme.campaigns import service
from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import (
    CampaignCreate,
    CampaignDetail,
    CampaignOut,
    CampaignReliability,
    CampaignStats,
    CampaignSummary,
    CampaignUpdate,
    Completion,
    ImageCardPage,
    Slug,
    StateChange,
    VersionOut,
)
from clickme.campaigns.winnable import measure_winnable
from clickme.core.deps import DbSession
from clickme.core.schemas import MAX_DB_ID, DbId, PageNumber, PerPage
from clickme.insights import completion, reliability, stats
from clickme.insights.deps import AppRuntime
from clickme.insights.flags import refresh_flags, resolve_flag
from clickme.insights.progress import campaign_progress
from clickme.insights.review import player_detail, review_page
from clickme.insights.stats import median_revealed
from clickme.players import service as players
from clickme.players.deps import CurrentPlayer
from clickme.players.schemas import (
    ExclusionIn,
    ExclusionOut,
    FlagOut,
    FlagReport,
    PlayerDetail,
    PlayerReviewPage,
)

router = APIRouter(prefix="/api/admin/campaigns", tags=["admin: campaigns"])
public_router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


@router.get("")
def list_campaigns(
    session: DbSession, runtime: AppRuntime, _staff: StaffMember
) -> list[CampaignSummary]:
    """Every campaign with its progress, the median revealed area included (cached per round)."""
    campaigns = service.list_campaigns(session)
    progress = campaign_progress(session, campaigns)
    for campaign in campaigns:
        progress[campaign.id].median_revealed = median_revealed(
            session, campaign.id, runtime.revealed, runtime.images, runtime.settings.images_dir
        )
    return [
        CampaignSummary(**CampaignOut.model_validate(c).model_dump(), progress=progress[c.id])
        for c in campaigns
    ]


def _versions(session: Session, campaign: Campaign) -> list[VersionOut]:
    """The campaign's versions, each with the email of the staff member who made it."""
    versions = service.versions(session, campaign)
    emails = emails_by_id(session, {v.created_by for v in versions if v.created_by is not None})
    return [
        VersionOut.model_validate(version).model_copy(
            update={"created_by_email": emails.get(version.created_by or 0)}
        )
        for version in versions
    ]


def _detail(session: Session, campaign: Campaign) -> CampaignDetail:
    progress = campaign_progress(session, [campaign])[campaign.id]
    return CampaignDetail(
        **CampaignOut.model_validate(campaign).model_dump(),
        progress=progress,
        versions=_versions(session, campaign),
    )


@router.get("/{campaign_id}")
def read_campaign(campaign_id: DbId, session: DbSession, _staff: StaffMember) -> CampaignDetail:
    return _detail(session, service.get_campaign(session, campaign_id))


@router.post("", status_code=201)
def create_campaign(body: CampaignCreate, session: DbSession, _admin: AdminUser) -> CampaignDetail:
    return _detail(session, service.create_campaign(session, body))


@router.patch("/{campaign_id}")
def update_campaign(
    campaign_id: DbId, body: CampaignUpdate, session: DbSession, admin: AdminUser
) -> CampaignDetail:
    campaign = service.get_campaign(session, campaign_id)
    return _detail(session, service.update_campaign(session, campaign, body, admin.id))


@router.post("/{campaign_id}/state")
def change_state(
    campaign_id: DbId, body: StateChange, session: DbSession, runtime: AppRuntime, admin: AdminUser
) -> CampaignDetail:
    """Move the campaign along a transition; an activation starts measuring (after the
    commit, in the background) which images nobody can win."""
    campaign = service.get_campaign(session, campaign_id)
    service.change_state(session, campaign, body.state, admin.id)
    if body.state == "active":
        session.commit()
        job = partial(
            measure_winnable,
            runtime.database,
            campaign.id,
            runtime.settings.images_dir,
            runtime.scorer_for,
        )
        runtime.winnable.submit(campaign.id, job)
    return _detail(session, campaign)


@router.get("/{campaign_id}/stats")
def campaign_stats(
    campaign_id: DbId, session: DbSession, runtime: AppRuntime, _staff: StaffMember
) -> CampaignStats:
    campaign = service.get_campaign(session, campaign_id)
    return stats.campaign_stats(
        session, campaign, runtime.revealed, runtime.images, runtime.settings.images_dir
    )


@router.get("/{campaign_id}/reliability")
def campaign_reliability(
    campaign_id: DbId,
    session: DbSession,
    runtime: AppRuntime,
    _staff: StaffMember,
    target: Annotated[float | None, Query(gt=0, lt=1)] = None,
) -> CampaignReliability:
    """Ceiling and floor, the reliability curve and the plays per image the target needs, as
    last measured; a measurement no longer fresh is made again in the background (``measuring``:
    ask again in a few seconds)."""
    campaign = service.get_campaign(session, campaign_id)
    return reliability.reliability_report(session, campaign, runtime.reliability, target)


@router.get("/{campaign_id}/images")
def campaign_images(
    campaign_id: DbId,
    session: DbSession,
    _staff: StaffMember,
    page: PageNumber = 1,
    per_page: PerPage = 24,
) -> ImageCardPage:
    campaign = service.get_campaign(session, campaign_id)
    return stats.image_cards(session, campaign, page, per_page)


@router.get(
    "/{campaign_id}/images/{image_id}/map.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def image_map(
    campaign_id: DbId,
    image_id: DbId,
    session: DbSession,
    runtime: AppRuntime,
    _staff: StaffMember,
) -> Response:
    """The image's evaluation crop under the current human map, in heat colours."""
    campaign = service.get_campaign(session, campaign_id)
    png = stats.image_map_png(
        session, campaign, image_id, runtime.images, runtime.settings.images_dir
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@public_router.get("/{slug}/completion")
def read_completion(
    slug: Slug, session: DbSession, runtime: AppRuntime, player: CurrentPlayer
) -> Completion:
    """The signed-in player's completion (or screened-out) code once they played the campaign."""
    campaign = completion.campaign_for_completion(session, slug)
    settings = runtime.settings
    return completion.completion(
        session,
        campaign,
        player,
        runtime.images,
        settings.images_dir,
        settings.round_grace_ms,
        runtime.map_rules,
        settings.round_start_bound_s,
    )


players_router = APIRouter(prefix="/api/admin/players", tags=["admin"])


@players_router.get("")
def list_players(
    session: DbSession,
    runtime: AppRuntime,
    _staff: StaffMember,
    page: PageNumber = 1,
    per_page: PerPage = 50,
    flagged: bool = False,
    campaign: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
) -> PlayerReviewPage:
    """A page of players; ``flagged``: only those with an open flag; ``campaign``: only those
    who played a round of that campaign."""
    return review_page(
        session, runtime.images, runtime.settings.images_dir, page, per_page, flagged, campaign
    )


@players_router.get("/{player_id}")
def get_player(
    player_id: DbId, session: DbSession, runtime: AppRuntime, _staff: StaffMember
) -> PlayerDetail:
    """One player: measures, flags, exclusion and every round they played."""
    return player_detail(session, runtime.images, runtime.settings.images_dir, player_id)


@players_router.post("/flags/refresh")
def refresh_all_flags(session: DbSession, runtime: AppRuntime, _admin: AdminUser) -> FlagReport:
    """Recompute every player's flags now (also `clickme players flag`)."""
    return refresh_flags(session, runtime.images, runtime.settings.images_dir)


@players_router.post("/{player_id}/flags/{kind}/resolve")
def resolve_player_flag(
    player_id: DbId, kind: str, session: DbSession, _admin: AdminUser
) -> FlagOut:
    return FlagOut.model_validate(resolve_flag(session, player_id, kind))


@players_router.post("/{player_id}/exclude", status_code=201)
def exclude(
    player_id: DbId, body: ExclusionIn, session: DbSession, admin: AdminUser
) -> ExclusionOut:
    exclusion = players.exclude_player(session, player_id, body.reason, admin.id)
    return ExclusionOut.model_validate(exclusion)


@players_router.delete("/{player_id}/exclude", status_code=204)
def lift_exclusion(player_id: DbId, session: DbSession, _admin: AdminUser) -> Response:
    players.lift_exclusion(session, player_id)
    return Response(status_code=204)
