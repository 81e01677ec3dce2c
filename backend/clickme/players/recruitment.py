"""Recruitment ids from the study URL: Prolific (PROLIFIC_PID, STUDY_ID, SESSION_ID) and
MTurk-style (workerId, assignmentId, hitId)."""

import re
from dataclasses import dataclass
from typing import Literal

from clickme.core.errors import Unprocessable

Source = Literal["prolific", "mturk"]
MTURK_PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"
MAX_ID_LENGTH = 64
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Recruitment:
    """Who sent the player: the participant's id at the source, and the study and session
    (MTurk: the HIT and the assignment)."""

    source: Source
    external_id: str
    study_id: str | None
    session_id: str | None


@dataclass(frozen=True)
class RecruitmentParams:
    """The recruitment parameters exactly as the page found them in its URL."""

    prolific_pid: str | None = None
    study_id: str | None = None
    session_id: str | None = None
    worker_id: str | None = None
    assignment_id: str | None = None
    hit_id: str | None = None

    def is_mturk_preview(self) -> bool:
        return self.assignment_id == MTURK_PREVIEW_ASSIGNMENT


def _checked(name: str, value: str | None) -> str | None:
    """The id when it is 1-64 letters, digits, '-' or '_'; a 422 naming the parameter if not."""
    if value is None:
        return None
    if not 0 < len(value) <= MAX_ID_LENGTH or not _ID_PATTERN.fullmatch(value):
        raise Unprocessable(
            "invalid_recruitment_id",
            f"{name} must be 1-{MAX_ID_LENGTH} letters, digits, '-' or '_'",
        )
    return value


def parse_recruitment(params: RecruitmentParams) -> Recruitment | None:
    """The recruitment the parameters describe, None for a player who came on their own;
    a 422 for invalid ids, mixed sources, or a study or session without a participant."""
    prolific = (
        _checked("PROLIFIC_PID", params.prolific_pid),
        _checked("STUDY_ID", params.study_id),
        _checked("SESSION_ID", params.session_id),
    )
    mturk = (
        _checked("workerId", params.worker_id),
        _checked("assignmentId", params.assignment_id),
        _checked("hitId", params.hit_id),
    )
    if any(prolific) and any(mturk):
        raise Unprocessable(
            "invalid_recruitment", "give either Prolific or MTurk parameters, not both"
        )
    if any(prolific):
        return _recruitment("prolific", "PROLIFIC_PID", *prolific)
    if any(mturk):
        worker, assignment, hit = mturk
        return _recruitment("mturk", "workerId", worker, hit, assignment)
    return None


def _recruitment(
    source: Source, id_name: str, external_id: str | None, study: str | None, session: str | None
) -> Recruitment:
    if external_id is None:
        raise Unprocessable(
            "invalid_recruitment", f"{id_name} is required with the other {source} parameters"
        )
    return Recruitment(source, external_id, study, session)
