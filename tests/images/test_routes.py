"""GET /api/images/{id}/file on a small app with the real router, database and error handlers."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.deps import get_app_settings, get_db_session
from clickme.core.errors import install_error_handlers
from clickme.images.models import Image
from clickme.images.routes import router
from clickme.images.service import DEMO_SET, image_file_path, import_demo_set, list_images


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
