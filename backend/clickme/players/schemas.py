"""Player API schemas."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from clickme.core.schemas import ShownText
from clickme.players.recruitment import RecruitmentParams

DisplayName = Annotated[
    str, ShownText(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^<>]+$")
]


class PlayerCreate(BaseModel):
    """Consent, and the recruitment parameters the page found in its URL (all optional)."""

    model_config = ConfigDict(populate_by_name=True)

    consent: bool
    prolific_pid: str | None = Field(default=None, alias="PROLIFIC_PID")
    study_id: str | None = Field(default=None, alias="STUDY_ID")
    session_id: str | None = Field(default=None, alias="SESSION_ID")
    worker_id: str | None = Field(default=None, alias="workerId")
    assignment_id: str | None = Field(default=None, alias="assignmentId")
    hit_id: str | None = Field(default=None, alias="hitId")

    def recruitment_params(self) -> RecruitmentParams:
        return RecruitmentParams(
            prolific_pid=self.prolific_pid,
            study_id=self.study_id,
            session_id=self.session_id,
            worker_id=self.worker_id,
            assignment_id=self.assignment_id,
            hit_id=self.hit_id,
        )


class PlayerUpdate(BaseModel):
    display_name: DisplayName


class PlayerOut(BaseModel):
    id: int
    display_name: str
    total_score: int
    rounds_played: int


class PlayerMeasures(BaseModel):
    """A player's quality measures over their finished rounds (None where nothing to measure)."""

    rounds: int
    success_rate: float | None
    mean_revealed: float | None
    speed_px_s: float | None
    first_point_ms: float | None
    display_ms: float | None = Field(description="median time from a round's start to its photo")
    intervals: int
    interval_cv: float | None
    consensus_distance: float | None
    consensus_images: int
    catch_rounds: int
    catch_accuracy: float | None
    no_effort_rounds: int = 0


class FlagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    reason: str
    created_at: datetime
    resolved: bool


class ExclusionIn(BaseModel):
    reason: Annotated[str, ShownText(strip_whitespace=True, min_length=1, max_length=500)]


class ExclusionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    player_id: int
    reason: str
    excluded_by: int | None
    created_at: datetime


class PlayerReview(BaseModel):
    """A player as staff review them: recruitment, measures, flags and exclusion."""

    id: int
    display_name: str
    created_at: datetime
    source: str | None
    external_id: str | None
    study_id: str | None
    session_id: str | None
    measures: PlayerMeasures
    flags: list[FlagOut]
    exclusion: ExclusionOut | None


class PlayerRound(BaseModel):
    """One of a player's rounds as staff review it; duration_ms: from the photo shown (else the
    round's start) to its end, None while it runs."""

    id: int
    image_id: int
    class_name: str
    campaign_id: int
    campaign_name: str
    outcome: str | None
    is_repeat: bool
    score: int
    n_points: int
    started_at: datetime
    duration_ms: int | None


class PlayerDetail(PlayerReview):
    """A player with every round they played, newest first."""

    rounds: list[PlayerRound]


class PlayerReviewPage(BaseModel):
    total: int
    page: int
    per_page: int
    players: list[PlayerReview]


class FlagReport(BaseModel):
    """What a flag refresh did."""

    players: int
    raised: int
    cleared: int
