"""Alignment jobs: `clickme align` for one model, asked for in the console and run in the
background by the API processes, on ``clickme.core.jobs``'s queue and workers (as exports).

A job's progress counts the campaign's images explained; it stores its result as `clickme align`
does (the console's alignment table reads it) and keeps a copy in its row. A cancelled or
interrupted job stores nothing.
"""

import logging
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.alignment.models import AlignmentJob
from clickme.alignment.runs import AlignOptions, align_model, default_device
from clickme.alignment.saliency import saliency_method
from clickme.alignment.schemas import AlignmentJobCreate, AlignmentJobOut, AlignmentResult
from clickme.alignment.score import campaign_ceiling, campaign_targets
from clickme.campaigns.models import Campaign
from clickme.campaigns.service import get_campaign
from clickme.core.config import Settings
from clickme.core.errors import Unprocessable
from clickme.core.jobs import (
    UNEXPECTED,
    JobProgress,
    JobTable,
    JobWorker,
    Stopped,
    finished,
)
from clickme.maps.aggregate import MapSettings
from clickme.scoring.registry import get_model_spec

log = logging.getLogger(__name__)

TABLE = JobTable(AlignmentJob, kind="alignment job", code="alignment")
get_job = TABLE.get
cancel_job = TABLE.cancel_or_refuse


class NoMaps(Exception):
    """The campaign has no image with a human map to align with."""


def run_alignment(
    session: Session, settings: Settings, request: AlignmentJobCreate, progress: JobProgress
) -> AlignmentResult:
    """The requested alignment, computed and stored; progress: the images explained."""
    campaign = session.get_one(Campaign, request.campaign_id)
    maps = MapSettings(exclude_flags=tuple(sorted(set(request.exclude_flags))))
    images, _tally = campaign_targets(session, campaign.id, maps)
    if not images:
        raise NoMaps(f"campaign {campaign.slug!r} has no image with a human map yet")
    progress.start(len(images))
    rng = np.random.default_rng(request.seed)
    ceiling = campaign_ceiling(images, maps, request.splits, rng)
    options = AlignOptions(
        maps, default_device(), request.method, request.batch_size, None, request.seed
    )
    spec = get_model_spec(request.model_name)
    return align_model(
        session, settings, campaign, images, spec, ceiling, options, advance=progress.advance
    )


class AlignmentJobs(JobWorker):
    """An API process's alignment worker (``JobWorker``)."""

    name = "alignment"
    table = TABLE

    def execute(self, progress: JobProgress) -> None:
        with self.database.session() as session:
            job = session.get_one(AlignmentJob, progress.job_id)
            request = AlignmentJobCreate.model_validate(job.request)
        outcome = self._outcome(request, progress)
        TABLE.move_now(self.database, progress.job_id, ("running",), **outcome)

    def _outcome(self, request: AlignmentJobCreate, progress: JobProgress) -> dict[str, Any]:
        """Runs the alignment; the values the job's row ends with."""
        try:
            with self.database.session() as session:
                result = run_alignment(session, self.settings, request, progress)
        except Stopped:
            return self.stopped_outcome()
        except (NoMaps, KeyError) as error:
            return finished("failed", error=str(error.args[0]))
        except Exception:
            log.exception("alignment job %d failed", progress.job_id)
            return finished("failed", error=UNEXPECTED)
        return finished("done", result=result.model_dump(mode="json"), done=AlignmentJob.total)


def create_job(session: Session, body: AlignmentJobCreate, staff_id: int) -> AlignmentJob:
    """A queued job for a known campaign (404), model and saliency method (422
    ``invalid_alignment``); not yet submitted."""
    campaign = get_campaign(session, body.campaign_id)
    try:
        get_model_spec(body.model_name)
        saliency_method(body.method)
    except KeyError as error:
        raise Unprocessable("invalid_alignment", str(error.args[0])) from error
    job = AlignmentJob(
        campaign_id=campaign.id, requested_by=staff_id, model_name=body.model_name,
        request=body.model_dump(mode="json"), state="queued",
    )  # fmt: skip
    session.add(job)
    session.flush()
    return job


def list_jobs(
    session: Session, limit: int, campaign_id: int | None = None
) -> list[AlignmentJobOut]:
    """The newest jobs first (of one campaign if given)."""
    query = select(AlignmentJob, Campaign).join(Campaign, Campaign.id == AlignmentJob.campaign_id)
    if campaign_id is not None:
        query = query.where(AlignmentJob.campaign_id == campaign_id)
    rows = session.execute(query.order_by(AlignmentJob.id.desc()).limit(limit)).all()
    return [job_out(job, campaign) for job, campaign in rows]


def job_out(job: AlignmentJob, campaign: Campaign) -> AlignmentJobOut:
    return AlignmentJobOut(
        id=job.id, campaign_id=job.campaign_id, campaign_name=campaign.name,
        model_name=job.model_name, requested_by=job.requested_by,
        request=AlignmentJobCreate.model_validate(job.request), state=job.state, done=job.done,
        total=job.total, error=job.error,
        result=AlignmentResult.model_validate(job.result) if job.result else None,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
    )  # fmt: skip


def read_job(session: Session, job: AlignmentJob) -> AlignmentJobOut:
    return job_out(job, session.get_one(Campaign, job.campaign_id))
