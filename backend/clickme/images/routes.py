"""Image routes: the photo file itself (content-addressed, so cached for good)."""

from fastapi import APIRouter
from fastapi.responses import FileResponse

from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.core.schemas import DbId
from clickme.images import service

router = APIRouter(prefix="/api/images", tags=["images"])

IMMUTABLE_CACHE_CONTROL = "public, max-age=86400, immutable"


@router.get("/{image_id}/file", response_class=FileResponse)
def image_file(image_id: DbId, session: DbSession, settings: AppSettings) -> FileResponse:
    image = service.get_image(session, image_id)
    if image is None:
        raise ClickmeError(404, "image_not_found", f"no image {image_id}")
    path = service.image_file_path(settings.images_dir, image)
    if not path.is_file():
        raise ClickmeError(404, "image_not_found", f"the file of image {image_id} is missing")
    return FileResponse(path, headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL})
