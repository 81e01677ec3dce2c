"""Alignment job routes (researchers and admins): start, follow and cancel `clickme align` runs
in the background."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from clickme.accounts.deps import StaffMember
from clickme.alignment import jobs
from clickme.alignment.schemas import AlignmentJobCreate, AlignmentJobOut
from clickme.core.deps import DbSession
from clickme.core.schemas import MAX_DB_ID, DbId

router = APIRouter(prefix="/api/admin/alignment-jobs", tags=["admin: alignment"])


def get_alignment_jobs(request: Request) -> jobs.AlignmentJobs:
    return request.app.state.alignment_jobs


AlignmentWorker = Annotated[jobs.AlignmentJobs, Depends(get_alignment_jobs)]


@router.post("", status_code=201)
def start_alignment(
    body: AlignmentJobCreate, session: DbSession, worker: AlignmentWorker, staff: StaffMember
) -> AlignmentJobOut:
    """A queued alignment job, run in the background; 422 ``invalid_alignment`` for an unknown
    model or saliency method."""
    job = jobs.create_job(session, body, staff.id)
    session.commit()
    worker.wake()
    return jobs.read_job(session, job)


@router.get("")
def list_alignment_jobs(
    session: DbSession,
    _staff: StaffMember,
    campaign: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AlignmentJobOut]:
    return jobs.list_jobs(session, limit, campaign)


@router.get("/{job_id}")
def read_alignment_job(job_id: DbId, session: DbSession, _staff: StaffMember) -> AlignmentJobOut:
    return jobs.read_job(session, jobs.get_job(session, job_id))


@router.post("/{job_id}/cancel")
def cancel_alignment_job(
    job_id: DbId, session: DbSession, worker: AlignmentWorker, _staff: StaffMember
) -> AlignmentJobOut:
    """Cancels a queued or running alignment (a running one stops at its next image)."""
    job = jobs.get_job(session, job_id)
    jobs.cancel_job(session, job)
    session.commit()
    worker.stop(job.id)
    return jobs.read_job(session, job)
