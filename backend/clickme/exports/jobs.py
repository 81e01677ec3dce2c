"""Export jobs: exports asked for in the console, run in the background by the API processes.

A job is queued in the database (no owner). Each API process has one worker thread that claims
the oldest queued job (a conditional update from ``queued`` to ``running`` that names the process
as the job's ``owner``: of several processes exactly one wins), runs it into its own folder,
``<data dir>/exports/job-<id>``, through ``run_export``, then claims the next: one job at a time
per process. It polls every ``Timing.poll_s``, and at once when its own process queues a job.
Every move of a row (queued -> running -> done | failed | cancelled) is a conditional update
(``WHERE state IN ...``), so a cancel from any process and the worker's own moves never overwrite
each other; a cancelled export stops at its next image and leaves no files behind.

A keeper thread writes the running job's ``heartbeat_at`` every ``Timing.heartbeat_s``, whatever
the export is doing, and sweeps: a running job whose process has been silent for
``Timing.stale_after_s`` (killed, or its machine gone) is failed ("interrupted: the server
stopped") and its files removed; the sweep also runs when a process starts. Jobs of live
processes are never touched. The sweep also expires finished exports: a done job older than
``CLICKME_EXPORT_RETENTION_DAYS`` has its files deleted and its row marked ``expired`` (kept,
so the console still says what was exported and when). A clean shutdown puts the process's
running job back in the queue (progress reset, partial files removed) for another process, or
the next start, to run.
"""

import logging
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.campaigns.service import get_campaign
from clickme.core.config import Settings
from clickme.core.db import Database, changed_rows, utcnow
from clickme.core.errors import ClickmeError
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

log = logging.getLogger(__name__)

EXPORTS_FOLDER = "exports"
ACTIVE_STATES = ("queued", "running")
INTERRUPTED = "interrupted: the server stopped"
EXPIRED = "expired: its files were deleted after {days:g} days (CLICKME_EXPORT_RETENTION_DAYS)"
UNEXPECTED = "unexpected error: see the server log"
# The progress in a job's row is written at most this often (and at the start and the end).
PROGRESS_EVERY_S = 0.5
# A running job put back in the queue by a clean shutdown: as if never started.
REQUEUED: dict[str, Any] = {
    "state": "queued", "owner": None, "heartbeat_at": None, "started_at": None, "done": 0,
    "total": 0,
}  # fmt: skip


@dataclass(frozen=True)
class Timing:
    """How often a worker looks for queued jobs and beats for its running one, and how long a
    running job's process may stay silent before the job is failed as interrupted."""

    poll_s: float = 1.0
    heartbeat_s: float = 5.0
    stale_after_s: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> "Timing":
        """The configured timing (``CLICKME_EXPORT_HEARTBEAT_S``, ``..._STALE_AFTER_S``)."""
        return cls(heartbeat_s=settings.export_heartbeat_s,
                   stale_after_s=settings.export_stale_after_s)  # fmt: skip


class _Stopped(Exception):
    """The job was cancelled, or the server is stopping."""


def move(
    session: Session,
    job_id: int,
    states: tuple[str, ...],
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Sets the values on the job if it is in one of the states (and meets the conditions);
    whether it was."""
    changed = changed_rows(
        session,
        update(ExportJob)
        .where(ExportJob.id == job_id, ExportJob.state.in_(states), *conditions)
        .values(**values)
        .execution_options(synchronize_session=False),
    )
    return changed == 1


def _move_now(
    database: Database,
    job_id: int,
    states: tuple[str, ...],
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """``move`` in a transaction of its own."""
    with database.session() as session:
        return move(session, job_id, states, *conditions, **values)


class JobProgress:
    """An export's progress, recorded in its job's row at most every ``PROGRESS_EVERY_S``; once
    the job is cancelled or the server stops, the next image raises ``_Stopped``."""

    def __init__(self, database: Database, job_id: int, stop: threading.Event) -> None:
        self.database = database
        self.job_id = job_id
        self.stop = stop
        self.done = 0
        self.total = 0
        self.saved_at = 0.0

    def start(self, total: int) -> None:
        self.total = total
        self._save()

    def advance(self) -> None:
        if self.stop.is_set():
            raise _Stopped
        self.done += 1
        if time.monotonic() - self.saved_at >= PROGRESS_EVERY_S:
            self._save()

    def _save(self) -> None:
        """Records done/total; a job no longer running (cancelled elsewhere) stops here."""
        self.saved_at = time.monotonic()
        if not _move_now(self.database, self.job_id, ("running",), done=self.done,
                         total=self.total):  # fmt: skip
            raise _Stopped


def job_folder(settings: Settings, job: ExportJob) -> Path:
    return settings.data_dir / job.folder


def owner_token() -> str:
    """This process's name in a job's ``owner``: host, process id and a random part (a process
    started again with the same id is another owner); at most 57 characters."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def take(session: Session, job_id: int, owner: str) -> bool:
    """Moves a queued job to running for the owner; whether it did (of several processes taking
    the same job, exactly one does)."""
    now = utcnow()
    return move(
        session, job_id, ("queued",), state="running", owner=owner, started_at=now,
        heartbeat_at=now,
    )  # fmt: skip


def claim(database: Database, owner: str) -> int | None:
    """The oldest queued job, taken for the owner; None when none is queued."""
    while True:
        with database.session() as session:
            job_id = session.scalar(
                select(ExportJob.id)
                .where(ExportJob.state == "queued")
                .order_by(ExportJob.id)
                .limit(1)
            )
            if job_id is None or take(session, job_id, owner):
                return job_id
        # Another process took it first: try the next one.


def _finished(state: str, **values: Any) -> dict[str, Any]:
    """The values a job's row ends with."""
    return {"state": state, "finished_at": utcnow(), **values}


def fail_silent(session: Session, settings: Settings, stale_after_s: float) -> int:
    """Fails the running jobs whose process has not beaten for ``stale_after_s`` (it was killed,
    or its machine is gone) and removes their files; how many there were."""
    silent = or_(
        ExportJob.heartbeat_at.is_(None),
        ExportJob.heartbeat_at < utcnow() - timedelta(seconds=stale_after_s),
    )
    jobs = session.scalars(select(ExportJob).where(ExportJob.state == "running", silent)).all()
    failed = 0
    for job in jobs:
        ended = _finished("failed", error=INTERRUPTED)
        if move(session, job.id, ("running",), silent, **ended):
            shutil.rmtree(job_folder(settings, job), ignore_errors=True)
            failed += 1
    return failed


def expire_old(session: Session, settings: Settings) -> int:
    """Marks the done jobs that finished more than ``export_retention_days`` ago expired and
    deletes their files (none with a retention of 0); how many there were."""
    if not settings.export_retention_days:
        return 0
    old = ExportJob.finished_at < utcnow() - timedelta(days=settings.export_retention_days)
    jobs = session.scalars(select(ExportJob).where(ExportJob.state == "done", old)).all()
    error = EXPIRED.format(days=settings.export_retention_days)
    expired = 0
    for job in jobs:
        if move(session, job.id, ("done",), old, state="expired", error=error):
            shutil.rmtree(job_folder(settings, job), ignore_errors=True)
            expired += 1
    return expired


class ExportJobs:
    """An API process's export worker: a thread that claims queued jobs and runs them one at a
    time, and a keeper thread that beats for the running job and sweeps up silent processes'."""

    def __init__(
        self, database: Database, settings: Settings, timing: Timing | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.timing = timing or Timing.of(settings)
        self.owner = owner_token()
        self._current: JobProgress | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name="export-worker", daemon=True)
        self._keeper = threading.Thread(target=self._keep, name="export-keeper", daemon=True)

    @classmethod
    def start(
        cls, database: Database, settings: Settings, timing: Timing | None = None
    ) -> "ExportJobs":
        """The running worker, after failing the jobs of processes gone silent."""
        jobs = cls(database, settings, timing)
        jobs.sweep()
        jobs._worker.start()
        jobs._keeper.start()
        return jobs

    def wake(self) -> None:
        """Looks for queued jobs now (one was just committed), not at the next poll."""
        self._wake.set()

    def stop(self, job_id: int) -> None:
        """Tells the job's export, if this process runs it, to stop at its next image (its row
        says why); a process running it elsewhere notices at its next beat or progress write."""
        with self._lock:
            if self._current is not None and self._current.job_id == job_id:
                self._current.stop.set()

    def sweep(self) -> int:
        """``fail_silent`` and ``expire_old`` in a transaction of their own, logged; how many
        jobs were failed."""
        with self.database.session() as session:
            failed = fail_silent(session, self.settings, self.timing.stale_after_s)
            expired = expire_old(session, self.settings)
        if failed:
            log.warning("%d export job(s) of a stopped server marked failed", failed)
        if expired:
            log.info("%d finished export(s) expired, their files deleted", expired)
        return failed

    def close(self) -> None:
        """Stops the running export at its next image and puts its job back in the queue; the
        queued jobs stay for another process or the next start."""
        with self._lock:
            self._closing.set()
            if self._current is not None:
                self._current.stop.set()
        self._wake.set()
        self._worker.join()
        self._closed.set()
        self._keeper.join()

    def _work(self) -> None:
        while not self._closing.is_set():
            self._wake.clear()
            if not self._run_next():
                self._wake.wait(self.timing.poll_s)

    def _run_next(self) -> bool:
        """Claims the oldest queued job and runs it; whether there was one (False when the
        database failed: the error is logged, a job left running is swept once silent)."""
        try:
            job_id = claim(self.database, self.owner)
            if job_id is not None:
                self._run(job_id)
        except Exception:
            log.exception("the export worker could not claim or finish a job")
            return False
        return job_id is not None

    def _run(self, job_id: int) -> None:
        progress = JobProgress(self.database, job_id, threading.Event())
        with self._lock:
            self._current = progress
            if self._closing.is_set():
                progress.stop.set()
        try:
            self._export(progress)
        finally:
            with self._lock:
                self._current = None

    def _keep(self) -> None:
        while not self._closed.wait(self.timing.heartbeat_s):
            try:
                self._beat()
                self.sweep()
            except Exception:
                log.exception("the export keeper could not reach the database")

    def _beat(self) -> None:
        """Writes the running job's heartbeat; a job no longer running here (cancelled in any
        process, or failed by a sweep) stops at its next image."""
        with self._lock:
            progress = self._current
        if progress is not None and not _move_now(
            self.database, progress.job_id, ("running",), ExportJob.owner == self.owner,
            heartbeat_at=utcnow(),
        ):  # fmt: skip
            progress.stop.set()

    def _export(self, progress: JobProgress) -> None:
        with self.database.session() as session:
            job = session.get_one(ExportJob, progress.job_id)
            slug = session.get_one(Campaign, job.campaign_id).slug
            request = ExportJobCreate.model_validate(job.request).to_request(slug)
            folder = job_folder(self.settings, job)
        outcome = self._outcome(request, folder, progress)
        ended = _move_now(self.database, progress.job_id, ("running",), **outcome)
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
        except _Stopped:
            return REQUEUED if self._closing.is_set() else _finished("failed", error=INTERRUPTED)
        except ExportError as error:
            return _finished("failed", error=str(error))
        except Exception:
            log.exception("export job %d failed", progress.job_id)
            return _finished("failed", error=UNEXPECTED)
        return _finished("done", manifest=manifest, done=ExportJob.total)


def create_job(session: Session, body: ExportJobCreate, staff_id: int) -> ExportJob:
    """A queued job for a valid request (422 ``invalid_export`` otherwise); not yet submitted."""
    campaign = get_campaign(session, body.campaign_id)
    request = body.to_request(campaign.slug)
    try:
        check_request(request)
        check_image_set(session, campaign, request.image_set)
    except ExportError as error:
        raise ClickmeError(422, "invalid_export", str(error)) from error
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
        raise ClickmeError(422, "invalid_export", str(error)) from error
    return ExportPreview.model_validate(preview)


def get_job(session: Session, job_id: int) -> ExportJob:
    job = session.get(ExportJob, job_id)
    if job is None:
        raise ClickmeError(404, "export_not_found", f"no export {job_id}")
    return job


def cancel_job(session: Session, job: ExportJob) -> None:
    """Marks a queued or running job cancelled (409 ``export_finished`` otherwise)."""
    if not move(session, job.id, ACTIVE_STATES, state="cancelled", finished_at=utcnow()):
        session.refresh(job)
        raise ClickmeError(409, "export_finished", f"export {job.id} is already {job.state}")
    session.refresh(job)


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
        raise ClickmeError(410, "export_expired", f"export {job.id} {job.error}")
    if job.state != "done" or job.manifest is None:
        raise ClickmeError(409, "export_not_done", f"export {job.id} is {job.state}")
    folder = job_folder(settings, job)
    if not (folder / MANIFEST_NAME).is_file():
        raise ClickmeError(404, "export_files_missing", f"the files of export {job.id} are gone")
    return folder, [MANIFEST_NAME, *sorted(job.manifest["files"])]


def file_of(settings: Settings, job: ExportJob, name: str) -> Path:
    """One file of a done job: only a file it lists, inside its folder, reached without a
    link (404 for anything else: ``..``, absolute paths, links)."""
    folder, names = finished_files(settings, job)
    root = folder.resolve()
    path = folder / name
    if name not in names or path.resolve() != root / name or not path.is_file():
        raise ClickmeError(404, "file_not_found", f"export {job.id} has no file {name!r}")
    return path
