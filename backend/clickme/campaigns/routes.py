"""Campaign routes: the admin's (read, create, change settings and state) and the participants'
(public description); the list with progress and the completion code are insights."""

from functools import partial

from fastapi import APIRouter
from sqlalchemy.orm import Session

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.accounts.service import emails_by_id
from clickme.campaigns import service
from clickme.campaigns.deps import AppRuntime
from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import (
    CampaignCreate,
    CampaignDetail,
    CampaignOut,
    CampaignPublic,
    CampaignUpdate,
    Slug,
    StateChange,
    UnwinnableReport,
    VersionOut,
)
from clickme.campaigns.winnable import measure_winnable, unwinnable_report
from clickme.core.deps import DbSession
from clickme.core.schemas import DbId

router = APIRouter(prefix="/api/admin/campaigns", tags=["admin: campaigns"])
public_router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


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
    progress = service.campaign_progress(session, [campaign])[campaign.id]
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


@router.get("/{campaign_id}/unwinnable")
def read_unwinnable(campaign_id: DbId, session: DbSession, _staff: StaffMember) -> UnwinnableReport:
    """The images nobody can win, as far as measured."""
    return unwinnable_report(session, service.get_campaign(session, campaign_id))


@public_router.get("/{slug}")
def read_public_campaign(slug: Slug, session: DbSession) -> CampaignPublic:
    """An active campaign as its players' page shows it (no codes, no internal ids)."""
    return service.public_info(session, service.get_campaign_by_slug(session, slug))
