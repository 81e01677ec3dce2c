"""Export jobs: exports asked for in the console, run in the background by the API processes.

The queue, the workers, heartbeats, sweeps and cancels are ``clickme.core.jobs``'s; an export
job runs into its own folder, ``<data dir>/exports/job-<id>``, through ``run_export``, and a
cancelled, interrupted or failed export leaves no files behind. The sweep also expires finished
exports: a done job older than ``CLICKME_EXPORT_RETENTION_DAYS`` has its files deleted and its
row marked ``expired`` (kept, so the console still says what was exported and when). A clean
shutdown puts the process's running job back in the queue (progress reset, partial files
removed) for another process, or the next start, to run.
"""

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.campaigns.service import get_campaign
from clickme.core.config import Settings
from clickme.core.db import Database, utcnow
from clickme.core.errors import Conflict, Gone, NotFound, Unprocessable
from clickme.core.jobs import (
    INTERRUPTED,
    UNEXPECTED,
    JobProgress,
    JobTable,
    JobWorker,
    Stopped,
    Timing,
    finished,
)
from clickme.exports.manifest import MANIFEST_NAME
from clickme.exports.models import ExportJob
from clickme.exports.schemas import (
    ExportFileOut,
    ExportJobCreate,
    ExportJobDetail,
    ExportJobOut,
    ExportPreview,
)
from clickme.exports.service import (
    ExportError,
    ExportRequest,
    check_image_set,
    check_request,
    preview_export,
    run_export,
)

# The shared machinery's names that export callers (and tests) use through this module.
__all__ = ["INTERRUPTED", "JobProgress", "Timing"]

log = logging.getLogger(__name__)

EXPORTS_FOLDER = "exports"
EXPIRED = "expired: its files were deleted after {days:g} days (CLICKME_EXPORT_RETENTION_DAYS)"

TABLE = JobTable(ExportJob, kind="export", code="export")
get_job = TABLE.get
cancel_job = TABLE.cancel_or_refuse
move = TABLE.move
take = TABLE.take
claim = TABLE.claim


def job_folder(settings: Settings, job: ExportJob) -> Path:
    return settings.data_dir / job.folder


def _retention_start(settings: Settings) -> datetime:
    """Done exports that finished before this are expired."""
    return utcnow() - timedelta(days=settings.export_retention_days)


# Asked on the raw path (``Database.scalar_of``) at each sweep, before any session.
_ANY_TO_EXPIRE = select(
    exists().where(ExportJob.state == bindparam("done"), ExportJob.finished_at < bindparam("start"))
)


def any_to_expire(database: Database, settings: Settings) -> bool:
    """Whether a done export is past its retention (never with a retention of 0), without a
    session."""
    if not settings.export_retention_days:
        return False
    parameters = {"done": "done", "start": _retention_start(settings)}
    return bool(database.scalar_of(_ANY_TO_EXPIRE, parameters))


def expire_old(session: Session, settings: Settings) -> int:
    """Marks the done jobs that finished more than ``export_retention_days`` ago expired and
    deletes their files (none with a retention of 0); how many there were."""
    if not settings.export_retention_days:
        return 0
    old = ExportJob.finished_at < _retention_start(settings)
    jobs = session.scalars(select(ExportJob).where(ExportJob.state == "done", old)).all()
    error = EXPIRED.format(days=settings.export_retention_days)
    expired = 0
    for job in jobs:
        if move(session, job.id, ("done",), old, state="expired", error=error):
            shutil.rmtree(job_folder(settings, job), ignore_errors=True)
            expired += 1
    return expired


class ExportJobs(JobWorker):
    """An API process's export worker (``JobWorker``): runs exports into their folders."""

    name = "export"
    table = TABLE

    def failed_silent(self, session: Session, job: ExportJob) -> None:
        shutil.rmtree(job_folder(self.settings, job), ignore_errors=True)

    def sweep(self) -> int:
        """Fails the silent processes' jobs and expires old exports (``expire_old``), logged;
        how many jobs were failed."""
        failed = super().sweep()
        if any_to_expire(self.database, self.settings):
            with self.database.session() as session:
                expired = expire_old(session, self.settings)
            if expired:
                log.info("%d finished export(s) expired, their files deleted", expired)
        return failed

    def execute(self, progress: JobProgress) -> None:
        with self.database.session() as session:
            job = session.get_one(ExportJob, progress.job_id)
            slug = session.get_one(Campaign, job.campaign_id).slug
            request = ExportJobCreate.model_validate(job.request).to_request(slug)
            folder = job_folder(self.settings, job)
        outcome = self._outcome(request, folder, progress)
        ended = TABLE.move_now(self.database, progress.job_id, ("running",), **outcome)
        if outcome["state"] != "done" or not ended:
            shutil.rmtree(folder, ignore_errors=True)

    def _outcome(
        self, request: ExportRequest, folder: Path, progress: JobProgress
    ) -> dict[str, Any]:
        """Runs the export; the values the job's row ends with (back to the queue when the
        server is stopping)."""
        try:
            with self.database.session() as session:
                manifest = run_export(
                    session, request, folder, secret=self.settings.resolved_secret_key(),
                    images_dir=self.settings.images_dir, progress=progress,
                )  # fmt: skip
        except Stopped:
            return self.stopped_outcome()
        except ExportError as error:
            return finished("failed", error=str(error))
        except Exception:
            log.exception("export job %d failed", progress.job_id)
            return finished("failed", error=UNEXPECTED)
        return finished("done", manifest=manifest, done=ExportJob.total)


def create_job(session: Session, body: ExportJobCreate, staff_id: int) -> ExportJob:
    """A queued job for a valid request (422 ``invalid_export`` otherwise); not yet submitted."""
    campaign = get_campaign(session, body.campaign_id)
    request = body.to_request(campaign.slug)
    try:
        check_request(request)
        check_image_set(session, campaign, request.image_set)
    except ExportError as error:
        raise Unprocessable("invalid_export", str(error)) from error
    job = ExportJob(
        campaign_id=campaign.id, requested_by=staff_id, request=body.model_dump(mode="json"),
        state="queued", folder="",
    )  # fmt: skip
    session.add(job)
    session.flush()
    job.folder = f"{EXPORTS_FOLDER}/job-{job.id}"
    return job


def preview_job(session: Session, body: ExportJobCreate) -> ExportPreview:
    """What the job would export (``preview_export``); 422 ``invalid_export`` for a bad
    request, as ``create_job``."""
    campaign = get_campaign(session, body.campaign_id)
    try:
        preview = preview_export(session, body.to_request(campaign.slug))
    except ExportError as error:
        raise Unprocessable("invalid_export", str(error)) from error
    return ExportPreview.model_validate(preview)


def list_jobs(session: Session, limit: int) -> list[ExportJobOut]:
    """The newest jobs first."""
    rows = session.execute(
        select(ExportJob, Campaign)
        .join(Campaign, Campaign.id == ExportJob.campaign_id)
        .order_by(ExportJob.id.desc())
        .limit(limit)
    ).all()
    return [job_out(job, campaign) for job, campaign in rows]


def job_out(job: ExportJob, campaign: Campaign) -> ExportJobOut:
    return ExportJobOut(
        id=job.id, campaign_id=job.campaign_id, campaign_slug=campaign.slug,
        campaign_name=campaign.name, requested_by=job.requested_by, request=job.request,
        state=job.state, done=job.done, total=job.total, error=job.error,
        counts=job.manifest["counts"] if job.manifest else None, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at,
    )  # fmt: skip


def job_detail(session: Session, settings: Settings, job: ExportJob) -> ExportJobDetail:
    """The job with its manifest's files and their sizes on disk."""
    folder = job_folder(settings, job)
    hashes: dict[str, str] = job.manifest["files"] if job.manifest else {}
    files = [
        ExportFileOut(path=name, size=_size(folder / name), sha256=digest)
        for name, digest in sorted(hashes.items())
    ]
    campaign = session.get_one(Campaign, job.campaign_id)
    return ExportJobDetail(**job_out(job, campaign).model_dump(), files=files)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def finished_files(settings: Settings, job: ExportJob) -> tuple[Path, list[str]]:
    """A done job's folder and the files it holds, the manifest first (409 before it is done,
    410 once expired)."""
    if job.state == "expired":
        raise Gone("export_expired", f"export {job.id} {job.error}")
    if job.state != "done" or job.manifest is None:
        raise Conflict("export_not_done", f"export {job.id} is {job.state}")
    folder = job_folder(settings, job)
    if not (folder / MANIFEST_NAME).is_file():
        raise NotFound("export_files_missing", f"the files of export {job.id} are gone")
    return folder, [MANIFEST_NAME, *sorted(job.manifest["files"])]


def file_of(settings: Settings, job: ExportJob, name: str) -> Path:
    """One file of a done job: only a file it lists, inside its folder, reached without a
    link (404 for anything else: ``..``, absolute paths, links)."""
    folder, names = finished_files(settings, job)
    root = folder.resolve()
    path = folder / name
    if name not in names or path.resolve() != root / name or not path.is_file():
        raise NotFound("file_not_found", f"export {job.id} has no file {name!r}")
    return path
