"""Image routes: the photo file itself and its display version (content-addressed, so cached for
good); the staff's image sets and their images (staff), zip and folder imports (admins)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import NotFound, Unprocessable
from clickme.core.schemas import DbId, PageNumber, PerPage
from clickme.images import service
from clickme.images.display import display_file, display_key
from clickme.images.models import Image, ImageSet
from clickme.images.schemas import (
    FolderImport,
    ImageOut,
    ImageSetOut,
    ImageSetPage,
    ImageUpdate,
    ImportReportOut,
    UploadFields,
)
from clickme.images.upload import import_zip, resolve_import_folder

router = APIRouter(prefix="/api/images", tags=["images"])

IMMUTABLE_CACHE_CONTROL = "public, max-age=86400, immutable"


def _image(session: Session, image_id: int) -> Image:
    image = service.get_image(session, image_id)
    if image is None:
        raise NotFound("image_not_found", f"no image {image_id}")
    return image


@router.get("/{image_id}/file", response_class=FileResponse)
def image_file(image_id: DbId, session: DbSession, settings: AppSettings) -> FileResponse:
    """The original photo, as imported."""
    path = service.image_file_path(settings.images_dir, _image(session, image_id))
    if not path.is_file():
        raise NotFound("image_not_found", f"the file of image {image_id} is missing")
    return FileResponse(path, headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL})


@router.get("/{image_id}/display/{key}.jpg", response_class=FileResponse)
def image_display(
    image_id: DbId, key: str, session: DbSession, settings: AppSettings
) -> FileResponse:
    """The photo sized for screens (what players see), made on first use unless prepared."""
    image = _image(session, image_id)
    max_side = settings.display_max_side
    if key != display_key(image, max_side):
        raise NotFound("image_not_found", f"no display version {key!r} of {image_id}")
    if not service.image_file_path(settings.images_dir, image).is_file():
        raise NotFound("image_not_found", f"the file of image {image_id} is missing")
    path = display_file(settings.images_dir, settings.display_dir, image, max_side)
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL}
    )


PREFIX = "/api/admin/image-sets"
UPLOAD_PATH = f"{PREFIX}/upload"

admin_router = APIRouter(prefix=PREFIX, tags=["admin"])


@dataclass(frozen=True)
class ZipUpload:
    file: BinaryIO
    image_set: str


async def zip_upload(request: Request, _admin: AdminUser) -> AsyncIterator[ZipUpload]:
    """The upload form, read only once the caller is known to be an admin."""
    async with request.form(max_files=1, max_fields=1) as form:
        try:
            fields = UploadFields.model_validate({"set": form.get("set")})
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            ) from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("invalid_request", "file: attach the zip as the `file` field")
        yield ZipUpload(file=upload.file, image_set=fields.set)


def _report(session: Session, report: service.ImportReport) -> ImportReportOut:
    image_set = service.find_image_set(session, report.image_set)
    return ImportReportOut.of(report, image_set.id if image_set else None)


@admin_router.get("")
def list_image_sets(session: DbSession, _staff: StaffMember) -> list[ImageSetOut]:
    return [ImageSetOut.of(image_set, size) for image_set, size in service.image_set_sizes(session)]


@admin_router.get("/{image_set_id}/images")
def list_set_images(
    image_set_id: DbId,
    session: DbSession,
    _staff: StaffMember,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> ImageSetPage:
    image_set = session.get(ImageSet, image_set_id)
    if image_set is None:
        raise NotFound("image_set_not_found", f"no image set {image_set_id}")
    images, total = service.image_set_page(session, image_set_id, (page - 1) * per_page, per_page)
    return ImageSetPage(
        image_set=ImageSetOut.of(image_set, total),
        total=total,
        page=page,
        per_page=per_page,
        images=[ImageOut.of(image) for image in images],
    )


@admin_router.post("/upload")
def upload_zip(
    upload: Annotated[ZipUpload, Depends(zip_upload)], session: DbSession, settings: AppSettings
) -> ImportReportOut:
    """A zip of images in ImageNet naming (multipart: `file`, `set`), imported into the set."""
    return _report(session, import_zip(session, upload.file, upload.image_set, settings))


@admin_router.post("/import-folder")
def import_server_folder(
    body: FolderImport, session: DbSession, settings: AppSettings, _admin: AdminUser
) -> ImportReportOut:
    """A folder inside CLICKME_IMPORT_ROOT, imported into the set."""
    folder = resolve_import_folder(settings.import_root, body.path)
    report = service.import_directory(session, folder, body.set, settings.images_dir)
    return _report(session, report)


@admin_router.patch("/{image_set_id}/images/{image_id}")
def update_image(
    image_set_id: DbId, image_id: DbId, body: ImageUpdate, session: DbSession, _admin: AdminUser
) -> ImageOut:
    """Mark an image as a catch trial (a known-easy image used to score players) or not."""
    image = service.get_image(session, image_id)
    if image is None or image.image_set_id != image_set_id:
        raise NotFound("image_not_found", f"no image {image_id} in set {image_set_id}")
    image.is_catch = body.is_catch
    session.flush()
    return ImageOut.of(image)
