"""Staff route: a campaign's human-alignment table (results stored by `clickme align`)."""

from typing import Annotated

from fastapi import APIRouter, Query

from clickme.accounts.deps import StaffMember
from clickme.alignment.schemas import AlignmentTable
from clickme.alignment.service import alignment_table
from clickme.campaigns.service import get_campaign
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.core.schemas import MAX_DB_ID, DbId
from clickme.images.models import ImageSet

router = APIRouter(prefix="/api/admin/campaigns", tags=["admin"])


@router.get("/{campaign_id}/alignment")
def campaign_alignment(
    campaign_id: DbId,
    session: DbSession,
    settings: AppSettings,
    _staff: StaffMember,
    image_set_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
) -> AlignmentTable:
    """Every model's alignment with the campaign's maps and its top-1 on an image set (the one
    asked for, else the one where most of the models have a top-1)."""
    campaign = get_campaign(session, campaign_id)
    if image_set_id is not None and session.get(ImageSet, image_set_id) is None:
        raise ClickmeError(404, "image_set_not_found", f"no image set {image_set_id}")
    return alignment_table(session, settings.data_dir, campaign.id, image_set_id)
