"""GET /api/images/{id}/file and its display version on a small app with the real router,
database and error handlers."""

from collections.abc import Iterator
from io import BytesIO

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.deps import get_app_settings, get_db_session
from clickme.core.errors import install_error_handlers
from clickme.images.display import display_file, display_url
from clickme.images.models import Image
from clickme.images.routes import router
from clickme.images.service import (
    DEMO_PHOTOS,
    DEMO_SET,
    image_file_path,
    import_demo_set,
    import_directory,
    list_images,
)


@pytest.fixture
def client(database: Database, settings: Settings) -> TestClient:
    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)

    def session() -> Iterator[Session]:
        with database.session() as db_session:
            yield db_session

    app.dependency_overrides[get_db_session] = session
    app.dependency_overrides[get_app_settings] = lambda: settings
    return TestClient(app)


@pytest.fixture
def demo_images(database: Database, settings: Settings) -> dict[str, Image]:
    """The demo photos imported, by original name."""
    with database.session() as session:
        import_demo_set(session, settings.images_dir)
        images = list_images(session, DEMO_SET)
    return {image.original_name: image for image in images}


def test_serves_the_stored_file_cached_for_good(
    client: TestClient, demo_images: dict[str, Image], settings: Settings
) -> None:
    for original_name, media_type in (("coffee.png", "image/png"), ("rocket.jpg", "image/jpeg")):
        image = demo_images[original_name]
        response = client.get(f"/api/images/{image.id}/file")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.headers["cache-control"] == "public, max-age=86400, immutable"
        assert response.content == image_file_path(settings.images_dir, image).read_bytes()


def test_unknown_image_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/images/999999/file")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "image_not_found"


def test_missing_file_is_a_json_404(
    client: TestClient, demo_images: dict[str, Image], settings: Settings
) -> None:
    image = demo_images["coffee.png"]
    image_file_path(settings.images_dir, image).unlink()
    response = client.get(f"/api/images/{image.id}/file")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "image_not_found",
        "message": f"the file of image {image.id} is missing",
    }


def test_non_numeric_id_is_rejected(client: TestClient) -> None:
    assert client.get("/api/images/coffee/file").status_code == 422


def big_photo(settings: Settings, database: Database, size: tuple[int, int]) -> Image:
    """A photo of ``size`` (the demo coffee scaled), imported into its own set."""
    folder = settings.data_dir / "incoming"
    folder.mkdir(parents=True)
    with PILImage.open(DEMO_PHOTOS[0].path) as coffee:
        coffee.convert("RGB").resize(size).save(folder / "n07920052_big.JPEG", quality=95)
    with database.session() as session:
        import_directory(session, folder, "big", settings.images_dir)
        return list_images(session, "big")[0]


def test_players_get_a_display_version_sized_for_screens(
    client: TestClient, database: Database, settings: Settings
) -> None:
    image = big_photo(settings, database, (4000, 3000))
    url = display_url(image, settings.display_max_side)
    assert url.startswith(f"/api/images/{image.id}/display/{image.sha256[:32]}-1280-")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "public, max-age=86400, immutable"
    with PILImage.open(BytesIO(response.content)) as shown:
        assert (shown.format, shown.size) == ("JPEG", (1280, 960))
    original = image_file_path(settings.images_dir, image).stat().st_size
    assert len(response.content) < original / 5
    kept = list(settings.display_dir.iterdir())
    assert [file.name for file in kept] == [url.rsplit("/", 1)[1]]
    assert client.get(url).content == response.content == kept[0].read_bytes()
    assert client.get(f"/api/images/{image.id}/file").content == (
        image_file_path(settings.images_dir, image).read_bytes()
    )


def test_a_small_photo_keeps_its_size_and_a_stale_key_is_a_404(
    client: TestClient, demo_images: dict[str, Image], settings: Settings
) -> None:
    coffee = demo_images["coffee.png"]
    response = client.get(display_url(coffee, settings.display_max_side))
    with PILImage.open(BytesIO(response.content)) as shown:
        assert (shown.format, shown.size) == ("JPEG", (coffee.width, coffee.height))
    assert len(response.content) < image_file_path(settings.images_dir, coffee).stat().st_size
    stale = display_url(coffee, 640)
    assert client.get(stale).status_code == 404


def test_a_small_jpeg_is_not_encoded_again_when_that_grows_it(
    database: Database, settings: Settings
) -> None:
    folder = settings.data_dir / "incoming"
    folder.mkdir(parents=True)
    with PILImage.open(DEMO_PHOTOS[1].path) as cat:
        cat.convert("RGB").save(folder / "n02123045_cat.JPEG", quality=60)
    with database.session() as session:
        import_directory(session, folder, "cats", settings.images_dir)
        image = list_images(session, "cats")[0]
    shown = display_file(settings.images_dir, settings.display_dir, image, 1280)
    assert shown.read_bytes() == image_file_path(settings.images_dir, image).read_bytes()
