"""Image routes: the photo file itself and its display version (content-addressed, so cached for
good)."""

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.core.schemas import DbId
from clickme.images import service
from clickme.images.display import display_file, display_key
from clickme.images.models import Image

router = APIRouter(prefix="/api/images", tags=["images"])

IMMUTABLE_CACHE_CONTROL = "public, max-age=86400, immutable"


def _image(session: Session, image_id: int) -> Image:
    image = service.get_image(session, image_id)
    if image is None:
        raise ClickmeError(404, "image_not_found", f"no image {image_id}")
    return image


@router.get("/{image_id}/file", response_class=FileResponse)
def image_file(image_id: DbId, session: DbSession, settings: AppSettings) -> FileResponse:
    """The original photo, as imported."""
    path = service.image_file_path(settings.images_dir, _image(session, image_id))
    if not path.is_file():
        raise ClickmeError(404, "image_not_found", f"the file of image {image_id} is missing")
    return FileResponse(path, headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL})


@router.get("/{image_id}/display/{key}.jpg", response_class=FileResponse)
def image_display(
    image_id: DbId, key: str, session: DbSession, settings: AppSettings
) -> FileResponse:
    """The photo sized for screens (what players see), made on first use unless prepared."""
    image = _image(session, image_id)
    max_side = settings.display_max_side
    if key != display_key(image, max_side):
        raise ClickmeError(404, "image_not_found", f"no display version {key!r} of {image_id}")
    if not service.image_file_path(settings.images_dir, image).is_file():
        raise ClickmeError(404, "image_not_found", f"the file of image {image_id} is missing")
    path = display_file(settings.images_dir, settings.display_dir, image, max_side)
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL}
    )
