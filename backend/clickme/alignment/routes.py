"""Alignment routes (staff): a campaign's human-alignment table (results stored by
`clickme align`), and the alignment jobs that start, follow and cancel such runs in the
background."""

from typing import Annotated

from fastapi import APIRouter, Query

from clickme.accounts.deps import StaffMember
from clickme.alignment import jobs
from clickme.alignment.deps import AlignmentWorker
from clickme.alignment.schemas import AlignmentJobCreate, AlignmentJobOut, AlignmentTable
from clickme.alignment.service import alignment_table
from clickme.campaigns.service import get_campaign
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import NotFound
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
        raise NotFound("image_set_not_found", f"no image set {image_set_id}")
    return alignment_table(session, settings.data_dir, campaign.id, image_set_id)


jobs_router = APIRouter(prefix="/api/admin/alignment-jobs", tags=["admin: alignment"])


@jobs_router.post("", status_code=201)
def start_alignment(
    body: AlignmentJobCreate, session: DbSession, worker: AlignmentWorker, staff: StaffMember
) -> AlignmentJobOut:
    """A queued alignment job, run in the background; 422 ``invalid_alignment`` for an unknown
    model or saliency method."""
    job = jobs.create_job(session, body, staff.id)
    session.commit()
    worker.wake()
    return jobs.read_job(session, job)


@jobs_router.get("")
def list_alignment_jobs(
    session: DbSession,
    _staff: StaffMember,
    campaign: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AlignmentJobOut]:
    return jobs.list_jobs(session, limit, campaign)


@jobs_router.get("/{job_id}")
def read_alignment_job(job_id: DbId, session: DbSession, _staff: StaffMember) -> AlignmentJobOut:
    return jobs.read_job(session, jobs.get_job(session, job_id))


@jobs_router.post("/{job_id}/cancel")
def cancel_alignment_job(
    job_id: DbId, session: DbSession, worker: AlignmentWorker, _staff: StaffMember
) -> AlignmentJobOut:
    """Cancels a queued or running alignment (a running one stops at its next image)."""
    job = jobs.get_job(session, job_id)
    jobs.cancel_job(session, job)
    session.commit()
    worker.stop(job.id)
    return jobs.read_job(session, job)
