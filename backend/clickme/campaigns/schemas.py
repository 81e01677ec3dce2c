"""Campaign admin API schemas: every setting with its bounds."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clickme.core.schemas import ShownText, Text
from clickme.scoring.reveal import Background

CampaignState = Literal["draft", "active", "paused", "completed"]
Slug = Annotated[str, Text(min_length=1, max_length=100, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Name = Annotated[str, ShownText(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, ShownText(multiline=True, max_length=20_000)]
Code = Annotated[
    str, ShownText(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^\S+$")
]
Url = Annotated[str, Text(max_length=2000, pattern=r"^https?://[^\s/]+\S*$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
TopK = Annotated[int, Field(ge=1, le=20)]
TimeLimit = Annotated[int, Field(ge=100, le=120_000)]
Radius = Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Sigma = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
PlaysWanted = Annotated[int, Field(ge=1, le=100_000)]
MaxImages = Annotated[int, Field(ge=1, le=100_000)]
CatchShare = Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)]
AssignmentOrder = Literal["depth", "breadth"]
MinValidRounds = Annotated[int, Field(ge=0, le=100_000)]


class CampaignCreate(BaseModel):
    """A new campaign (a draft); unset rules take the game's defaults."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug
    image_set_id: Id
    model_id: Id
    top_k: TopK = 5
    time_limit_ms: TimeLimit = 7000
    brush_radius: Radius = 0.06
    brush_softness: Unit = 0.5
    reveal_background: Background = "blur"
    background_blur_sigma: Sigma = 12.0
    plays_wanted_per_image: PlaysWanted = 10
    max_images_per_player: MaxImages | None = None
    catch_trial_share: CatchShare = 0.0
    retire_at_reliability: Unit | None = None
    assignment_order: AssignmentOrder = "depth"
    min_valid_rounds_for_completion: MinValidRounds | None = None
    leave_out_unwinnable: bool = False
    repeat_when_exhausted: bool = False
    consent_text: LongText = ""
    instructions_text: LongText = ""
    completion_code: Code | None = None
    screened_out_code: Code | None = None
    completion_url: Url | None = None


NULLABLE_SETTINGS = frozenset(
    {
        "max_images_per_player",
        "retire_at_reliability",
        "min_valid_rounds_for_completion",
        "completion_code",
        "screened_out_code",
        "completion_url",
    }
)


class CampaignUpdate(BaseModel):
    """Settings to change; only the fields sent change (null clears an optional one)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    slug: Slug | None = None
    image_set_id: Id | None = None
    model_id: Id | None = None
    top_k: TopK | None = None
    time_limit_ms: TimeLimit | None = None
    brush_radius: Radius | None = None
    brush_softness: Unit | None = None
    reveal_background: Background | None = None
    background_blur_sigma: Sigma | None = None
    plays_wanted_per_image: PlaysWanted | None = None
    max_images_per_player: MaxImages | None = None
    catch_trial_share: CatchShare | None = None
    retire_at_reliability: Unit | None = None
    assignment_order: AssignmentOrder | None = None
    min_valid_rounds_for_completion: MinValidRounds | None = None
    leave_out_unwinnable: bool | None = None
    repeat_when_exhausted: bool | None = None
    consent_text: LongText | None = None
    instructions_text: LongText | None = None
    completion_code: Code | None = None
    screened_out_code: Code | None = None
    completion_url: Url | None = None

    @model_validator(mode="after")
    def _required_settings_are_not_cleared(self) -> "CampaignUpdate":
        for name in self.model_fields_set - NULLABLE_SETTINGS:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class StateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: CampaignState


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    state: CampaignState
    version: int
    created_at: datetime
    name: str
    slug: str
    image_set_id: int
    model_id: int
    top_k: int
    time_limit_ms: int
    brush_radius: float
    brush_softness: float
    reveal_background: Background
    background_blur_sigma: float
    plays_wanted_per_image: int
    max_images_per_player: int | None
    catch_trial_share: float
    retire_at_reliability: float | None
    assignment_order: AssignmentOrder
    min_valid_rounds_for_completion: int | None
    leave_out_unwinnable: bool
    repeat_when_exhausted: bool
    consent_text: str
    instructions_text: str
    completion_code: str | None
    screened_out_code: str | None
    completion_url: str | None


class CampaignProgress(BaseModel):
    """How far a campaign is."""

    images_total: int
    images_retired: int
    rounds: int
    plays_last_hour: int
    active_players: int
    dnn_success_rate: float | None
    median_revealed: float | None = None


class CampaignSummary(CampaignOut):
    progress: CampaignProgress


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    settings: dict[str, Any]
    created_at: datetime
    created_by: int | None
    created_by_email: str | None = None


class CampaignDetail(CampaignSummary):
    versions: list[VersionOut]


class CampaignPublic(BaseModel):
    """What a campaign's players may know of it: never its codes or internal ids."""

    slug: str
    name: str
    consent_text: str
    instructions_text: str
    time_limit_ms: int
    top_k: int
    images_per_player: int | None
    sample_image_url: str | None


class Completion(BaseModel):
    """Where a player who finished goes: the code for the recruiter, and the URL that takes it
    (none for MTurk-style players, who paste the code)."""

    status: Literal["completed", "screened_out"]
    code: str | None
    url: str | None


class HourCount(BaseModel):
    start: datetime
    rounds: int


class RevealedBin(BaseModel):
    """Finished rounds whose final revealed share of the crop is in [low, high)."""

    low: float
    high: float
    rounds: int
    correct: int
    success_rate: float | None


class CampaignStats(BaseModel):
    """The pictures of a campaign: rounds started per hour (last 7 days) and, over its latest
    measured rounds, the DNN's success against the revealed area."""

    hours: list[HourCount]
    revealed_bins: list[RevealedBin]
    median_revealed: float | None
    rounds_measured: int


class ImageCard(BaseModel):
    id: int
    class_index: int
    class_name: str
    plays: int
    retired: bool
    mapped_rounds: int
    map_url: str | None


class ImageCardPage(BaseModel):
    total: int
    page: int
    per_page: int
    images: list[ImageCard]


class ReliabilityValue(BaseModel):
    """A corrected (Spearman-Brown) split-half value with its 95% bootstrap interval, and the
    raw mean Spearman between halves it comes from."""

    value: float
    raw: float
    ci_low: float
    ci_high: float


class ReliabilityPoint(BaseModel):
    """The mean corrected split-half of ``images`` images' maps made of ``players`` players."""

    players: int
    reliability: float
    images: int


class PlaysNeeded(BaseModel):
    """By the Spearman-Brown prophecy from each measured image's reliability: the medians over
    those images of the players a map needs for the target and of the plays still to collect
    (null: the target is out of reach)."""

    target: float
    target_source: Literal["query", "campaign", "default"]
    images: int
    images_at_target: int
    players_needed: int | None
    more_plays_per_image: int | None


class ReliabilityMeasurement(BaseModel):
    """How far a campaign's human maps can be trusted, measured at ``measured_at`` on a bounded
    sample: at most ``images_measured`` images of the ``images_mapped`` with a map, each on at
    most ``max_players_measured`` players and ``splits`` split halves; the curve (reliability
    against players per image) on ``curve_images`` of them, ``curve_splits`` random choices of
    players per point. ``rounds_measured``: the campaign's finished rounds then.
    ``min_points``, ``min_rounds``: the map settings used (points a round needs to count, valid
    rounds an image needs to have a map)."""

    measured_at: datetime
    min_points: int
    min_rounds: int
    rounds_measured: int
    images_mapped: int
    images_measured: int
    max_players_measured: int
    splits: int
    ceiling: ReliabilityValue | None
    # The ceiling with the ``flagged_players`` players who have an open flag left out.
    ceiling_without_flagged: ReliabilityValue | None = None
    flagged_players: int = 0
    floor: ReliabilityValue | None
    curve: list[ReliabilityPoint]
    curve_images: int
    curve_splits: int
    estimate: PlaysNeeded | None


class CampaignReliability(BaseModel):
    """The latest measurement (null before the first), whether a newer one is under way (ask
    again in a few seconds), and the images retired by reliability now."""

    measuring: bool
    measurement: ReliabilityMeasurement | None
    images_retired_by_reliability: int


class UnwinnableImage(BaseModel):
    id: int
    class_name: str
    file_name: str


class UnwinnableReport(BaseModel):
    """The images the campaign's DNN does not get in its top-k even on the whole photo, as far
    as measured (``measured`` of ``total`` images; measured after activation, in the
    background); ``left_out``: whether assignment leaves them out."""

    measured: int
    total: int
    left_out: bool
    images: list[UnwinnableImage]
