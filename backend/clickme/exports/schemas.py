"""Export job API schemas: the request (the filters of ``ExportRequest``) and the job as shown."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from clickme.core.schemas import MAX_DB_ID, Text
from clickme.exports.service import DEFAULT_SHARD_SIZE, DEFAULT_SPLITS, ExportRequest
from clickme.images.labels import NUM_CLASSES, class_from_text

Id = Annotated[int, Field(ge=1, le=MAX_DB_ID)]


def _class_index(value: object) -> object:
    """A class by name or synset becomes its index; anything else is validated as an int."""
    return class_from_text(value) if isinstance(value, str) else value


# A class by index (673), synset ("n03793489") or name ("computer mouse").
ClassIndex = Annotated[int, BeforeValidator(_class_index), Field(ge=0, lt=NUM_CLASSES)]
Word = Annotated[str, Text(min_length=1, max_length=20)]


class ExportJobCreate(BaseModel):
    """An export to run: the campaign, the formats and the filters (formats and pointer types
    are checked by the export itself, so the lists live in one place)."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: Id
    formats: list[Word] = Field(min_length=1, max_length=20)
    campaign_version: Id | None = None
    image_set: Annotated[str, Text(min_length=1, max_length=200)] | None = None
    classes: list[ClassIndex] | None = Field(default=None, min_length=1, max_length=NUM_CLASSES)
    min_rounds: Annotated[int, Field(ge=1, le=100_000)] | None = None
    min_reliability: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None
    pointer_type: Word | None = None
    splits: Annotated[int, Field(ge=0, le=1000)] = DEFAULT_SPLITS
    shard_size: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_SHARD_SIZE
    exclude_flags: list[Annotated[str, Text(min_length=1, max_length=30)]] = Field(
        default=[], max_length=20
    )

    def to_request(self, campaign_slug: str) -> ExportRequest:
        return ExportRequest(
            campaign=campaign_slug,
            formats=tuple(self.formats),
            campaign_version=self.campaign_version,
            image_set=self.image_set,
            min_rounds=self.min_rounds,
            classes=tuple(self.classes) if self.classes is not None else None,
            min_reliability=self.min_reliability,
            pointer_type=self.pointer_type,
            shard_size=self.shard_size,
            n_splits=self.splits,
            exclude_flags=tuple(self.exclude_flags),
        )


class ExportFileOut(BaseModel):
    path: str
    size: int | None = Field(description="bytes; null when the file is gone from the disk")
    sha256: str


class ExportJobOut(BaseModel):
    """A job as listed: its state, progress and, once done, its counts."""

    id: int
    campaign_id: int
    campaign_slug: str
    campaign_name: str
    requested_by: int | None
    request: dict[str, Any]
    state: str
    done: int
    total: int
    error: str | None
    counts: dict[str, int] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ExportJobDetail(ExportJobOut):
    """A job with its files (the manifest's, with their sizes on disk)."""

    files: list[ExportFileOut]


class NoMapCount(BaseModel):
    images: int
    rule: str = Field(description='the rule they fail, in words: "fewer than 5 valid rounds"')


class ExportPreview(BaseModel):
    """What an export would hold, nothing written (``clickme export --dry-run``)."""

    counts: dict[str, int]
    without_map: dict[str, NoMapCount] = Field(
        description="images without a map by the first rule they fail: too_few_rounds, "
        "empty_view, low_reliability"
    )
    summary: list[str]
    rules: str
    map_settings: dict[str, Any]
    problem: str | None = Field(description="why the export would find nothing, else null")
