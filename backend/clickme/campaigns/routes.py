"""Campaign routes: the images nobody can win (staff) and the participants' public description;
the routes that show a campaign's progress (its list, read, create, change settings and state)
and the completion code are insights."""

from fastapi import APIRouter

from clickme.accounts.deps import StaffMember
from clickme.campaigns import service
from clickme.campaigns.schemas import CampaignPublic, Slug, UnwinnableReport
from clickme.campaigns.winnable import unwinnable_report
from clickme.core.deps import DbSession
from clickme.core.schemas import DbId

router = APIRouter(prefix="/api/admin/campaigns", tags=["admin: campaigns"])
public_router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


@router.get("/{campaign_id}/unwinnable")
def read_unwinnable(campaign_id: DbId, session: DbSession, _staff: StaffMember) -> UnwinnableReport:
    """The images nobody can win, as far as measured."""
    return unwinnable_report(session, service.get_campaign(session, campaign_id))


@public_router.get("/{slug}")
def read_public_campaign(slug: Slug, session: DbSession) -> CampaignPublic:
    """An active campaign as its players' page shows it (no codes, no internal ids)."""
    return service.public_info(session, service.get_campaign_by_slug(session, slug))
