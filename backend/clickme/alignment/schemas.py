"""Alignment results: as `clickme align` stores them, and the console's table."""

from datetime import datetime

from pydantic import BaseModel


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
