"""The model registry admin API: registered DNNs, accuracy computed on a set, a try on one image."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.campaigns.models import Campaign
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.images.models import ImageSet
from clickme.images.service import DEMO_SET, get_or_create_image_set, list_images
from clickme.scoring.registry import DEFAULT_MODEL, list_model_specs
from tests.accounts.staff import add_staff_user, staff_headers

URL = "/api/admin/models"


@pytest.fixture
def admin(client: TestClient, database: Database) -> TestClient:
    add_staff_user(database, "admin@example.org", "admin")
    client.headers.update(staff_headers(database, "admin@example.org"))
    return client


@pytest.fixture
def demo_ids(database: Database) -> dict[str, int]:
    """The demo images' ids by file name, and the set's id."""
    with database.session() as session:
        ids = {image.original_name: image.id for image in list_images(session, DEMO_SET)}
        ids["set"] = session.scalar(select(ImageSet.id).where(ImageSet.name == DEMO_SET))
    return ids


def test_lists_every_registered_model_with_the_campaign_model_id(
    admin: TestClient, database: Database
) -> None:
    models = admin.get(URL).json()
    assert [model["name"] for model in models] == [spec.name for spec in list_model_specs()]
    default = next(model for model in models if model["name"] == DEFAULT_MODEL)
    assert default["in_use"] and default["backend"] == "onnx"
    assert len(default["weights_sha256"]) == 64 and default["evaluations"] == []
    assert sum(model["in_use"] for model in models) == 1
    with database.session() as session:
        campaign_model = session.scalar(select(Campaign.model_id).where(Campaign.slug == "default"))
    assert default["id"] == campaign_model
    assert len({model["id"] for model in models}) == len(models)


def test_try_it_shows_espresso_for_the_coffee_photo(
    admin: TestClient, demo_ids: dict[str, int]
) -> None:
    response = admin.get(f"{URL}/{DEFAULT_MODEL}/try", params={"image_id": demo_ids["coffee.png"]})
    assert response.status_code == 200, response.text
    tried = response.json()
    assert tried["label"] == {"class_index": 967, "synset": "n07920052", "name": "espresso"}
    assert tried["top5"][0]["name"] == "espresso" and tried["label_rank"] == 1
    assert len(tried["top5"]) == 5
    probabilities = [guess["probability"] for guess in tried["top5"]]
    assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] > 0.5


def test_accuracy_on_the_demo_photos_is_computed_and_kept(
    admin: TestClient, demo_ids: dict[str, int]
) -> None:
    response = admin.post(f"{URL}/{DEFAULT_MODEL}/accuracy", json={"image_set_id": demo_ids["set"]})
    assert response.status_code == 201, response.text
    evaluation = response.json()
    assert evaluation["top5"] == 1.0 and evaluation["n_images"] == 5
    # The same numbers, image by image, through "try it" (same evaluation crop, same DNN).
    ranks = [
        admin.get(f"{URL}/{DEFAULT_MODEL}/try", params={"image_id": image_id}).json()["label_rank"]
        for name, image_id in demo_ids.items()
        if name != "set"
    ]
    assert evaluation["top1"] == pytest.approx(ranks.count(1) / 5)
    assert evaluation["top5"] == pytest.approx(sum(rank is not None for rank in ranks) / 5)

    listed = next(model for model in admin.get(URL).json() if model["name"] == DEFAULT_MODEL)
    assert listed["evaluations"] == [evaluation]


def test_refusals(
    admin: TestClient, demo_ids: dict[str, int], database: Database, settings: Settings
) -> None:
    with database.session() as session:
        empty_set = get_or_create_image_set(session, "empty").id
    accuracy = f"{URL}/{DEFAULT_MODEL}/accuracy"
    cases = [
        (admin.post(f"{URL}/no-such-model/accuracy", json={"image_set_id": demo_ids["set"]}), 404),
        (admin.post(accuracy, json={"image_set_id": 999_999}), 404),
        (admin.post(accuracy, json={"image_set_id": empty_set}), 422),
        (admin.post(accuracy, json={"image_set_id": "demo"}), 422),
        (admin.post(accuracy, json={}), 422),
        (admin.get(f"{URL}/no-such-model/try", params={"image_id": demo_ids["coffee.png"]}), 404),
        (admin.get(f"{URL}/{DEFAULT_MODEL}/try", params={"image_id": 999_999}), 404),
        (admin.get(f"{URL}/{DEFAULT_MODEL}/try", params={"image_id": -1}), 422),
        (admin.get(f"{URL}/{DEFAULT_MODEL}/try"), 422),
    ]
    assert [response.status_code for response, _ in cases] == [status for _, status in cases]
    codes = [response.json()["error"]["code"] for response, _ in cases[:3]]
    assert codes == ["model_not_found", "image_set_not_found", "image_set_empty"]

    next(settings.images_dir.glob("*.png")).unlink()
    missing = admin.post(accuracy, json={"image_set_id": demo_ids["set"]})
    assert (missing.status_code, missing.json()["error"]["code"]) == (409, "image_files_missing")
