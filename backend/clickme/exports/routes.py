"""Export job routes (researchers and admins): start, follow, cancel and download exports."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse

from clickme.accounts.deps import StaffMember
from clickme.core.deps import AppSettings, DbSession
from clickme.core.schemas import DbId
from clickme.exports import jobs
from clickme.exports.archive import zip_chunks
from clickme.exports.deps import ExportWorker
from clickme.exports.schemas import ExportJobCreate, ExportJobDetail, ExportJobOut, ExportPreview

router = APIRouter(prefix="/api/admin/exports", tags=["admin: exports"])


@router.post("", status_code=201)
def start_export(
    body: ExportJobCreate,
    session: DbSession,
    settings: AppSettings,
    worker: ExportWorker,
    staff: StaffMember,
) -> ExportJobDetail:
    """A queued export job, run in the background; 422 ``invalid_export`` for a bad request."""
    job = jobs.create_job(session, body, staff.id)
    session.commit()
    worker.wake()
    return jobs.job_detail(session, settings, job)


@router.post("/preview")
def preview_export(body: ExportJobCreate, session: DbSession, _staff: StaffMember) -> ExportPreview:
    """What the export would hold, nothing written: the images and rounds that qualify, and for
    the others how many fail each rule; ``problem`` says why it would find nothing."""
    return jobs.preview_job(session, body)


@router.get("")
def list_exports(
    session: DbSession, _staff: StaffMember, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ExportJobOut]:
    return jobs.list_jobs(session, limit)


@router.get("/{job_id}")
def read_export(
    job_id: DbId, session: DbSession, settings: AppSettings, _staff: StaffMember
) -> ExportJobDetail:
    return jobs.job_detail(session, settings, jobs.get_job(session, job_id))


@router.post("/{job_id}/cancel")
def cancel_export(
    job_id: DbId,
    session: DbSession,
    settings: AppSettings,
    worker: ExportWorker,
    _staff: StaffMember,
) -> ExportJobDetail:
    """Cancels a queued or running export (a running one stops at its next image)."""
    job = jobs.get_job(session, job_id)
    jobs.cancel_job(session, job)
    session.commit()
    worker.stop(job.id)
    return jobs.job_detail(session, settings, job)


@router.get("/{job_id}/download")
def download_export(
    job_id: DbId, session: DbSession, settings: AppSettings, _staff: StaffMember
) -> StreamingResponse:
    """The finished export as a zip, streamed as it is written (manifest.json first)."""
    job = jobs.get_job(session, job_id)
    folder, names = jobs.finished_files(settings, job)
    assert job.manifest is not None  # finished_files refuses a job without one
    root = f"{job.manifest['campaign']['slug']}-export-{job.id}"
    return StreamingResponse(
        zip_chunks(folder, names, root),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{root}.zip"'},
    )


@router.get("/{job_id}/files/{file_path:path}")
def download_file(
    job_id: DbId, file_path: str, session: DbSession, settings: AppSettings, _staff: StaffMember
) -> FileResponse:
    """One file of a finished export (a file its manifest lists, or manifest.json)."""
    path = jobs.file_of(settings, jobs.get_job(session, job_id), file_path)
    return FileResponse(path, filename=path.name)
