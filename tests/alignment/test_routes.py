"""The console's alignment table: stored results with each model's top-1 on an image set."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.alignment.score import summarise
from clickme.alignment.service import alignment_result, save_result
from clickme.campaigns.models import Campaign
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.images.service import get_or_create_image_set
from clickme.maps.aggregate import MapSettings
from clickme.scoring.tables import ModelEvaluation
from tests.accounts.staff import add_staff_user, staff_headers


@pytest.fixture
def researcher(client: TestClient, database: Database) -> TestClient:
    add_staff_user(database, "researcher@example.org", "researcher")
    client.headers.update(staff_headers(database, "researcher@example.org"))
    return client


@pytest.fixture
def campaign_id(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(Campaign.id).where(Campaign.slug == "default"))


def store(settings: Settings, campaign_id: int, name: str, version: str, values: list[float]):
    score = summarise(dict(enumerate(values)), 0.8, np.random.default_rng(0))
    result = alignment_result(
        campaign_id, "default", name, version, "gradient", MapSettings(), score
    )
    save_result(settings.data_dir, result)
    return result


def evaluate(database: Database, name: str, version: str, set_id: int, top1: float,
             age_days: int = 0) -> None:  # fmt: skip
    with database.session() as session:
        session.add(
            ModelEvaluation(
                model_name=name, model_version=version, image_set_id=set_id, top1=top1,
                top5=1.0, n_images=10, created_at=datetime.now(UTC) - timedelta(days=age_days),
            )
        )  # fmt: skip


def url(campaign_id: int) -> str:
    return f"/api/admin/campaigns/{campaign_id}/alignment"


def test_no_result_yet(researcher: TestClient, campaign_id: int) -> None:
    response = researcher.get(url(campaign_id))
    assert response.status_code == 200, response.text
    assert response.json() == {"campaign_id": campaign_id, "accuracy_set": None, "rows": []}


def test_results_come_with_the_newest_top1_on_the_busiest_or_chosen_set(
    researcher: TestClient, database: Database, game_settings: Settings, campaign_id: int
) -> None:
    lite = store(game_settings, campaign_id, "efficientnet-lite0", "abc", [0.4, 0.5, 0.6])
    store(game_settings, campaign_id, "tiny-net", "1", [0.1, 0.2])
    store(game_settings, campaign_id + 1, "other-campaign", "1", [0.9])
    with database.session() as session:
        first, second = (get_or_create_image_set(session, name).id for name in ("A", "B"))
    evaluate(database, "efficientnet-lite0", "abc", first, 0.7)
    evaluate(database, "efficientnet-lite0", "abc", second, 0.6)
    evaluate(database, "efficientnet-lite0", "abc", second, 0.5, age_days=1)  # older
    evaluate(database, "efficientnet-lite0", "old-version", first, 0.1)
    evaluate(database, "tiny-net", "1", second, 0.4)

    table = researcher.get(url(campaign_id)).json()
    assert table["accuracy_set"] == {"id": second, "name": "B"}  # both models have a top-1
    rows = {row["model_name"]: row for row in table["rows"]}
    assert list(rows) == ["efficientnet-lite0", "tiny-net"]
    assert (rows["efficientnet-lite0"]["top1"], rows["tiny-net"]["top1"]) == (0.6, 0.4)
    assert rows["efficientnet-lite0"]["mean"] == pytest.approx(0.5)
    assert rows["efficientnet-lite0"]["of_ceiling"] == pytest.approx(0.5 / 0.8)
    assert rows["efficientnet-lite0"]["ci_low"] == pytest.approx(lite.ci_low)

    chosen = researcher.get(url(campaign_id), params={"image_set_id": first}).json()
    assert chosen["accuracy_set"] == {"id": first, "name": "A"}
    assert [row["top1"] for row in chosen["rows"]] == [0.7, None]


def test_refusals(researcher: TestClient, campaign_id: int) -> None:
    cases = [
        (researcher.get(url(999_999)), 404),
        (researcher.get(url(campaign_id), params={"image_set_id": 999_999}), 404),
        (researcher.get(url(0)), 422),
        (researcher.get(url(campaign_id), params={"image_set_id": "x"}), 422),
    ]
    assert [response.status_code for response, _ in cases] == [status for _, status in cases]
    codes = [response.json()["error"]["code"] for response, _ in cases[:2]]
    assert codes == ["campaign_not_found", "image_set_not_found"]
