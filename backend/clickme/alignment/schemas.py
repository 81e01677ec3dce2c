"""Alignment results: as `clickme align` stores them, the console's table, and alignment jobs."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from clickme.core.schemas import MAX_DB_ID


class AlignmentResult(BaseModel):
    """One model's alignment with a campaign's human maps. mean, ci_low, ci_high: Spearman
    (mean over images, 95% bootstrap interval); ceiling: the images' mean corrected split-half
    value; of_ceiling*: those divided by the ceiling (None without a ceiling); min_points,
    min_rounds: the map settings used (None in results stored before they were recorded)."""

    campaign_id: int
    campaign_slug: str
    model_name: str
    model_version: str
    method: str
    blur: str
    min_points: int | None = None
    min_rounds: int | None = None
    n_images: int
    mean: float
    ci_low: float
    ci_high: float
    ceiling: float | None
    of_ceiling: float | None
    of_ceiling_low: float | None
    of_ceiling_high: float | None
    computed_at: datetime


class AlignmentRow(AlignmentResult):
    top1: float | None  # on the table's accuracy set; None when not computed there


class AccuracySet(BaseModel):
    id: int
    name: str


class AlignmentTable(BaseModel):
    """The campaign's stored alignment results, each with its model's top-1 on accuracy_set
    (the one asked for, else the set where most of the models have a top-1)."""

    campaign_id: int
    accuracy_set: AccuracySet | None
    rows: list[AlignmentRow]


class AlignmentJobCreate(BaseModel):
    """A model's alignment with a campaign's maps, to compute in the background (as `clickme
    align --campaign C --model M`): its saliency method, split-half splits for the ceiling,
    images per batch, random seed, and the flags whose open holders are left out."""

    campaign_id: int = Field(ge=1, le=MAX_DB_ID)
    model_name: str = Field(min_length=1, max_length=100)
    method: str = Field(default="gradient", min_length=1, max_length=50)
    splits: int = Field(default=50, ge=1, le=1000)
    batch_size: int = Field(default=16, ge=1, le=256)
    seed: int = Field(default=0, ge=0, le=MAX_DB_ID)
    exclude_flags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=20
    )


class AlignmentJobOut(BaseModel):
    """A job as listed: its state, progress (images explained of total) and, once done, the
    result it stored."""

    id: int
    campaign_id: int
    campaign_name: str
    model_name: str
    requested_by: int | None
    request: AlignmentJobCreate
    state: str
    done: int
    total: int
    error: str | None
    result: AlignmentResult | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
