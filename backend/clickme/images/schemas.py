"""Admin API schemas for image sets: sets, their images, import reports."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from clickme.images.labels import class_name
from clickme.images.models import Image, ImageSet
from clickme.images.service import ImportReport

SetName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f<>]+$"
    ),
]


class ImageSetOut(BaseModel):
    id: int
    name: str
    description: str
    image_count: int
    created_at: datetime

    @classmethod
    def of(cls, image_set: ImageSet, image_count: int) -> "ImageSetOut":
        return cls(
            id=image_set.id,
            name=image_set.name,
            description=image_set.description,
            image_count=image_count,
            created_at=image_set.created_at,
        )


class LabelOut(BaseModel):
    class_index: int
    synset: str
    name: str


class ImageOut(BaseModel):
    id: int
    original_name: str
    label: LabelOut
    width: int
    height: int
    is_catch: bool
    thumbnail_url: str

    @classmethod
    def of(cls, image: Image) -> "ImageOut":
        return cls(
            id=image.id,
            original_name=image.original_name,
            label=LabelOut(
                class_index=image.class_index,
                synset=image.synset,
                name=class_name(image.class_index),
            ),
            width=image.width,
            height=image.height,
            is_catch=image.is_catch,
            thumbnail_url=f"/api/images/{image.id}/file",
        )


class ImageUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_catch: bool


class ImageSetPage(BaseModel):
    image_set: ImageSetOut
    total: int
    page: int
    per_page: int
    images: list[ImageOut]


class UploadFields(BaseModel):
    """The text fields of the zip upload form (the zip itself is the `file` field)."""

    set: SetName


class FolderImport(BaseModel):
    """A folder on the server: relative to CLICKME_IMPORT_ROOT (or absolute, inside it)."""

    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    set: SetName


class ImportProblemOut(BaseModel):
    path: str
    message: str


class ImportReportOut(BaseModel):
    image_set: str
    image_set_id: int | None  # None when nothing could be imported and no set was made
    imported: int
    duplicates: int
    problems: list[ImportProblemOut]
    skipped: list[str]  # files in the archive that are not photos (README.md, notes.txt)

    @classmethod
    def of(cls, report: ImportReport, image_set_id: int | None) -> "ImportReportOut":
        return cls(
            image_set=report.image_set,
            image_set_id=image_set_id,
            imported=report.imported,
            duplicates=report.duplicates,
            problems=[ImportProblemOut(path=p.path, message=p.message) for p in report.problems],
            skipped=report.skipped,
        )
