"""Admin routes for campaigns: list with progress, read, create, change settings and state."""

from fastapi import APIRouter
from sqlalchemy.orm import Session

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.campaigns import service
from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import (
    CampaignCreate,
    CampaignDetail,
    CampaignOut,
    CampaignSummary,
    CampaignUpdate,
    StateChange,
    VersionOut,
)
from clickme.core.deps import DbSession

router = APIRouter(prefix="/api/admin/campaigns", tags=["admin: campaigns"])


def _detail(session: Session, campaign: Campaign) -> CampaignDetail:
    progress = service.campaign_progress(session, [campaign])[campaign.id]
    return CampaignDetail(
        **CampaignOut.model_validate(campaign).model_dump(),
        progress=progress,
        versions=[VersionOut.model_validate(v) for v in service.versions(session, campaign)],
    )


@router.get("")
def list_campaigns(session: DbSession, _staff: StaffMember) -> list[CampaignSummary]:
    campaigns = service.list_campaigns(session)
    progress = service.campaign_progress(session, campaigns)
    return [
        CampaignSummary(**CampaignOut.model_validate(c).model_dump(), progress=progress[c.id])
        for c in campaigns
    ]


@router.get("/{campaign_id}")
def read_campaign(campaign_id: int, session: DbSession, _staff: StaffMember) -> CampaignDetail:
    return _detail(session, service.get_campaign(session, campaign_id))


@router.post("", status_code=201)
def create_campaign(body: CampaignCreate, session: DbSession, _admin: AdminUser) -> CampaignDetail:
    return _detail(session, service.create_campaign(session, body))


@router.patch("/{campaign_id}")
def update_campaign(
    campaign_id: int, body: CampaignUpdate, session: DbSession, admin: AdminUser
) -> CampaignDetail:
    campaign = service.get_campaign(session, campaign_id)
    return _detail(session, service.update_campaign(session, campaign, body, admin.id))


@router.post("/{campaign_id}/state")
def change_state(
    campaign_id: int, body: StateChange, session: DbSession, admin: AdminUser
) -> CampaignDetail:
    campaign = service.get_campaign(session, campaign_id)
    return _detail(session, service.change_state(session, campaign, body.state, admin.id))
