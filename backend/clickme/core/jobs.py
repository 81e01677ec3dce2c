"""Jobs queued in a table and run in the background by the API processes (exports, alignment).

A job's row is queued with no owner. Each API process has, per kind of job, one worker thread
that claims the oldest queued job (a conditional update from ``queued`` to ``running`` that
names the process as the job's ``owner``: of several processes exactly one wins), runs it, then
claims the next: one job of a kind at a time per process. It polls every ``Timing.poll_s``, and
at once when its own process queues a job. A poll, like a sweep (below), first asks whether
there is anything to do in one statement without a session (``JobTable.any_queued``,
``any_silent``): an idle process's job threads cost a third of what their sessions did.

Every move of a row (queued -> running -> done | failed | cancelled) is a conditional update
(``WHERE state IN ...``), so a cancel from any process and the worker's own moves never
overwrite each other; a cancelled job stops at its next step (``JobProgress.advance``).

A keeper thread writes the running job's ``heartbeat_at`` every ``Timing.heartbeat_s``, whatever
the job is doing, and sweeps about a third of ``Timing.stale_after_s`` apart: a running job whose
process has been silent for ``stale_after_s`` (killed, or its machine gone) is failed
("interrupted: the server stopped"); the sweep also runs when a process starts. Jobs of live
processes are never touched.
A clean shutdown puts the process's running job back in the queue (progress reset) for another
process, or the next start, to run.

A table of jobs has the columns ``id``, ``state``, ``done``, ``total``, ``error``, ``owner``,
``heartbeat_at``, ``started_at`` and ``finished_at`` (``JobColumns``).
"""

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Self, TypeVar, cast

from sqlalchemy import ColumnElement, Integer, String, Text, bindparam, exists, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from clickme.core.config import Settings
from clickme.core.db import Database, UTCDateTime, changed_rows, utcnow
from clickme.core.errors import Conflict, NotFound

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
INTERRUPTED = "interrupted: the server stopped"
UNEXPECTED = "unexpected error: see the server log"
# The progress in a job's row is written at most this often (and at the start and the end).
PROGRESS_EVERY_S = 0.5
# A running job put back in the queue by a clean shutdown: as if never started.
REQUEUED: dict[str, Any] = {
    "state": "queued", "owner": None, "heartbeat_at": None, "started_at": None, "done": 0,
    "total": 0,
}  # fmt: skip


class JobColumns:
    """The columns every table of background jobs has (a mixin for its model)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The API process that took the job, and when it last said it was alive (several API
    # processes share the table: only a job whose owner went silent is failed as interrupted).
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


@dataclass(frozen=True)
class Timing:
    """How often a worker looks for queued jobs and beats for its running one, and how long a
    running job's process may stay silent before the job is failed as interrupted."""

    # A job queued by this process wakes its worker at once; the poll only finds jobs queued
    # by other processes while this one's worker was free (each poll is a query: at 1 s the
    # two kinds cost an idle API process about 2 CPU ms a second).
    poll_s: float = 5.0
    heartbeat_s: float = 5.0
    stale_after_s: float = 30.0

    @property
    def beats_per_sweep(self) -> int:
        """The keeper sweeps at every this many beats, about a third of ``stale_after_s``
        apart: a silent process's job is failed within 4/3 of it. A sweep is a query even when
        nothing is silent, so not at every beat (an idle API process spent about 0.5 CPU ms a
        second sweeping its two kinds of jobs)."""
        return max(1, round(self.stale_after_s / 3 / self.heartbeat_s))

    @classmethod
    def of(cls, settings: Settings) -> "Timing":
        """The configured timing (``CLICKME_EXPORT_HEARTBEAT_S``, ``..._STALE_AFTER_S``: for
        every kind of job)."""
        return cls(heartbeat_s=settings.export_heartbeat_s,
                   stale_after_s=settings.export_stale_after_s)  # fmt: skip


class Stopped(Exception):
    """The job was cancelled, or the server is stopping."""


def finished(state: str, **values: Any) -> dict[str, Any]:
    """The values a job's row ends with."""
    return {"state": state, "finished_at": utcnow(), **values}


def owner_token() -> str:
    """This process's name in a job's ``owner``: host, process id and a random part (a process
    started again with the same id is another owner); at most 57 characters."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


Job = TypeVar("Job", bound=JobColumns)


class JobTable(Generic[Job]):
    """The conditional moves of one table's job rows. ``kind`` names a job in messages and its
    not-found code ("alignment job": ``alignment_job_not_found``); ``code`` prefixes the code of
    a cancel refused because the job has finished (``alignment_finished``)."""

    def __init__(self, model: type[Job], kind: str, code: str) -> None:
        self.model: Any = model
        self.kind = kind
        self.code = code
        # Asked on the raw path (``Database.scalar_of``) before any session, while idle.
        self._any_queued = select(exists().where(model.state == bindparam("queued")))
        self._any_silent = select(
            exists().where(model.state == bindparam("running"), self._silent(bindparam("since")))
        )

    def _silent(self, since: Any) -> ColumnElement[bool]:
        """A job's process has not beaten since then (or never did)."""
        return or_(self.model.heartbeat_at.is_(None), self.model.heartbeat_at < since)

    def any_queued(self, database: Database) -> bool:
        """Whether a job is queued, without a session (a third of one's CPU after a pause)."""
        return bool(database.scalar_of(self._any_queued, {"queued": "queued"}))

    def any_silent(self, database: Database, stale_after_s: float) -> bool:
        """Whether a running job's process has been silent for ``stale_after_s``, without a
        session."""
        since = utcnow() - timedelta(seconds=stale_after_s)
        return bool(database.scalar_of(self._any_silent, {"running": "running", "since": since}))

    def get(self, session: Session, job_id: int) -> Job:
        """The job (404 ``{kind}_not_found`` for none)."""
        job = session.get(self.model, job_id)
        if job is None:
            raise NotFound(f"{self.kind.replace(' ', '_')}_not_found", f"no {self.kind} {job_id}")
        return cast(Job, job)

    def cancel_or_refuse(self, session: Session, job: Job) -> None:
        """Marks a queued or running job cancelled (409 ``{code}_finished`` otherwise); the job
        refreshed either way."""
        cancelled = self.cancel(session, job.id)
        session.refresh(job)
        if not cancelled:
            raise Conflict(f"{self.code}_finished", f"{self.code} {job.id} is already {job.state}")

    def move(
        self,
        session: Session,
        job_id: int,
        states: tuple[str, ...],
        *conditions: ColumnElement[bool],
        **values: Any,
    ) -> bool:
        """Sets the values on the job if it is in one of the states (and meets the
        conditions); whether it was."""
        statement = (
            update(self.model)
            .where(self.model.id == job_id, self.model.state.in_(states), *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return changed_rows(session, statement) == 1

    def move_now(
        self,
        database: Database,
        job_id: int,
        states: tuple[str, ...],
        *conditions: ColumnElement[bool],
        **values: Any,
    ) -> bool:
        """``move`` in a transaction of its own."""
        with database.session() as session:
            return self.move(session, job_id, states, *conditions, **values)

    def take(self, session: Session, job_id: int, owner: str) -> bool:
        """Moves a queued job to running for the owner; whether it did (of several processes
        taking the same job, exactly one does)."""
        now = utcnow()
        return self.move(
            session, job_id, ("queued",), state="running", owner=owner, started_at=now,
            heartbeat_at=now,
        )  # fmt: skip

    def claim(self, database: Database, owner: str) -> int | None:
        """The oldest queued job, taken for the owner; None when none is queued."""
        while True:
            with database.session() as session:
                job_id = session.scalar(
                    select(self.model.id)
                    .where(self.model.state == "queued")
                    .order_by(self.model.id)
                    .limit(1)
                )
                if job_id is None or self.take(session, job_id, owner):
                    return job_id
            # Another process took it first: try the next one.

    def fail_silent(self, session: Session, stale_after_s: float) -> list[Any]:
        """Fails the running jobs whose process has not beaten for ``stale_after_s`` (it was
        killed, or its machine is gone); the jobs failed."""
        silent = self._silent(utcnow() - timedelta(seconds=stale_after_s))
        jobs = session.scalars(
            select(self.model).where(self.model.state == "running", silent)
        ).all()
        ended = finished("failed", error=INTERRUPTED)
        return [job for job in jobs if self.move(session, job.id, ("running",), silent, **ended)]

    def cancel(self, session: Session, job_id: int) -> bool:
        """Marks a queued or running job cancelled; whether it was one."""
        return self.move(session, job_id, ACTIVE_STATES, state="cancelled", finished_at=utcnow())


class JobProgress:
    """A job's progress, recorded in its row at most every ``PROGRESS_EVERY_S``; once the job
    is cancelled or the server stops, the next step raises ``Stopped``."""

    def __init__(
        self, table: JobTable, database: Database, job_id: int, stop: threading.Event
    ) -> None:
        self.table = table
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
            raise Stopped
        self.done += 1
        if time.monotonic() - self.saved_at >= PROGRESS_EVERY_S:
            self._save()

    def _save(self) -> None:
        """Records done/total; a job no longer running (cancelled elsewhere) stops here."""
        self.saved_at = time.monotonic()
        if not self.table.move_now(self.database, self.job_id, ("running",), done=self.done,
                                   total=self.total):  # fmt: skip
            raise Stopped


class JobWorker:
    """An API process's worker for one table of jobs: a thread that claims queued jobs and runs
    them one at a time (``execute``, defined by each kind of job), and a keeper thread that
    beats for the running job and sweeps up silent processes' (``sweep``)."""

    name = "job"
    table: JobTable  # each kind of job sets its table

    def __init__(self, database: Database, settings: Settings, timing: Timing | None) -> None:
        self.database = database
        self.settings = settings
        self.timing = timing or Timing.of(settings)
        self.owner = owner_token()
        self._current: JobProgress | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name=f"{self.name}-worker", daemon=True)
        self._keeper = threading.Thread(target=self._keep, name=f"{self.name}-keeper", daemon=True)

    @classmethod
    def start(cls, database: Database, settings: Settings, timing: Timing | None = None) -> Self:
        """The running worker, after failing the jobs of processes gone silent."""
        jobs = cls(database, settings, timing)
        jobs.launch()
        return jobs

    def execute(self, progress: JobProgress) -> None:
        """Runs the claimed job and ends its row."""
        raise NotImplementedError

    def failed_silent(self, session: Session, job: Any) -> None:
        """Cleans up after a job failed as interrupted (nothing to clean by default)."""

    def launch(self) -> None:
        """Fails the jobs of processes gone silent, then starts the threads."""
        self.sweep()
        self._worker.start()
        self._keeper.start()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def stopped_outcome(self) -> dict[str, Any]:
        """The values the row of a job stopped midway ends with: back to the queue when the
        server is stopping, else failed as interrupted."""
        return REQUEUED if self.closing else finished("failed", error=INTERRUPTED)

    def wake(self) -> None:
        """Looks for queued jobs now (one was just committed), not at the next poll."""
        self._wake.set()

    def stop(self, job_id: int) -> None:
        """Tells the job, if this process runs it, to stop at its next step (its row says why);
        a process running it elsewhere notices at its next beat or progress write."""
        with self._lock:
            if self._current is not None and self._current.job_id == job_id:
                self._current.stop.set()

    def sweep(self) -> int:
        """Fails the silent processes' jobs in a transaction of its own, logged; how many (a
        session only when there are some)."""
        if not self.table.any_silent(self.database, self.timing.stale_after_s):
            return 0
        with self.database.session() as session:
            jobs = self.table.fail_silent(session, self.timing.stale_after_s)
            for job in jobs:
                self.failed_silent(session, job)
        if jobs:
            log.warning("%d %s job(s) of a stopped server marked failed", len(jobs), self.name)
        return len(jobs)

    def close(self) -> None:
        """Stops the running job at its next step and puts it back in the queue; the queued
        jobs stay for another process or the next start."""
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
            queued = self.table.any_queued(self.database)
            job_id = self.table.claim(self.database, self.owner) if queued else None
            if job_id is not None:
                self._run(job_id)
        except Exception:
            log.exception("the %s worker could not claim or finish a job", self.name)
            return False
        return job_id is not None

    def _run(self, job_id: int) -> None:
        progress = JobProgress(self.table, self.database, job_id, threading.Event())
        with self._lock:
            self._current = progress
            if self._closing.is_set():
                progress.stop.set()
        try:
            self.execute(progress)
        finally:
            with self._lock:
                self._current = None

    def _keep(self) -> None:
        beats = 0  # ``launch`` swept just now
        while not self._closed.wait(self.timing.heartbeat_s):
            beats += 1
            try:
                self._beat()
                if beats % self.timing.beats_per_sweep == 0:
                    self.sweep()
            except Exception:
                log.exception("the %s keeper could not reach the database", self.name)

    def _beat(self) -> None:
        """Writes the running job's heartbeat; a job no longer running here (cancelled in any
        process, or failed by a sweep) stops at its next step."""
        with self._lock:
            progress = self._current
        if progress is not None and not self.table.move_now(
            self.database, progress.job_id, ("running",), self.table.model.owner == self.owner,
            heartbeat_at=utcnow(),
        ):  # fmt: skip
            progress.stop.set()
