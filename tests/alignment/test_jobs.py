"""Alignment from the console: `clickme align` for one model as a background job, followed to
its result, cancelled midway, refused for what does not exist."""

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from clickme.alignment.service import result_path
from clickme.app import create_app
from clickme.campaigns.models import Campaign
from clickme.core.jobs import JobProgress
from clickme.images.models import ImageSet
from clickme.scoring.registry import ModelSpec
from clickme.scoring.scorer import Scorer
from tests.accounts.staff import add_staff_user, staff_headers
from tests.alignment.conftest import N_PHOTOS, Played
from tests.exports.fill import add_campaign

FINISHED = ("done", "failed", "cancelled")


@pytest.fixture
def researcher(played: Played, shared_scorer: Scorer) -> Iterator[TestClient]:
    """The API on the played campaign, called by a signed-in researcher."""
    add_staff_user(played.database, "researcher@example.org", "researcher")
    with TestClient(create_app(played.settings, scorer=shared_scorer)) as client:
        client.headers.update(staff_headers(played.database, "researcher@example.org"))
        yield client


def start(client: TestClient, played: Played, model: str, **fields) -> dict:
    body = {"campaign_id": played.campaign_id, "model_name": model, "splits": 2,
            "batch_size": 4, **fields}  # fmt: skip
    response = client.post("/api/admin/alignment-jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def finished(client: TestClient, job_id: int) -> dict:
    """The job once it is done, failed or cancelled, its progress seen on the way."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/api/admin/alignment-jobs/{job_id}").json()
        if job["state"] in FINISHED:
            return job
        assert job["done"] <= job["total"]
        time.sleep(0.05)
    pytest.fail(f"alignment job {job_id} still {job['state']}")


def test_an_alignment_job_runs_to_its_result_and_the_table_shows_it(
    researcher: TestClient, played: Played, tiny_model: ModelSpec
) -> None:
    job = start(researcher, played, tiny_model.name)
    assert job["state"] == "queued" and job["result"] is None
    done = finished(researcher, job["id"])
    assert done["state"] == "done", done
    assert done["done"] == done["total"] == N_PHOTOS
    result = done["result"]
    assert result["model_name"] == tiny_model.name and result["n_images"] == N_PHOTOS
    assert result["ci_low"] <= result["mean"] <= result["ci_high"]
    path = result_path(played.settings.data_dir, played.campaign_id, tiny_model.name, "1")
    assert path.is_file()
    table = researcher.get(f"/api/admin/campaigns/{played.campaign_id}/alignment").json()
    assert [row["model_name"] for row in table["rows"]] == [tiny_model.name]
    assert table["rows"][0]["mean"] == result["mean"]
    listed = researcher.get("/api/admin/alignment-jobs", params={"campaign": played.campaign_id})
    assert [j["id"] for j in listed.json()] == [job["id"]]
    assert listed.json()[0]["campaign_name"] and listed.json()[0]["request"]["splits"] == 2


def test_a_cancelled_alignment_stops_at_its_next_image_and_stores_nothing(
    researcher: TestClient,
    played: Played,
    tiny_model: ModelSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reached, released = threading.Event(), threading.Event()
    real_advance = JobProgress.advance

    def advance(progress: JobProgress) -> None:
        """The first image waits until its job is stopped."""
        if not reached.is_set():
            reached.set()
            if progress.stop.wait(30):
                released.set()
        real_advance(progress)

    monkeypatch.setattr(JobProgress, "advance", advance)
    job = start(researcher, played, tiny_model.name)
    assert reached.wait(60), "the alignment never reached its first image"
    assert researcher.get(f"/api/admin/alignment-jobs/{job['id']}").json()["state"] == "running"
    cancelled = researcher.post(f"/api/admin/alignment-jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert released.wait(30)
    again = researcher.post(f"/api/admin/alignment-jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "alignment_finished"
    ended = finished(researcher, job["id"])
    assert ended["state"] == "cancelled" and ended["result"] is None
    path = result_path(played.settings.data_dir, played.campaign_id, tiny_model.name, "1")
    assert not path.exists()


def test_an_alignment_of_what_does_not_exist_is_refused(
    researcher: TestClient, played: Played, tiny_model: ModelSpec
) -> None:
    url = "/api/admin/alignment-jobs"
    body = {"campaign_id": played.campaign_id, "model_name": tiny_model.name}
    unknown_model = researcher.post(url, json={**body, "model_name": "nope"})
    assert unknown_model.status_code == 422
    assert unknown_model.json()["error"]["code"] == "invalid_alignment"
    unknown_method = researcher.post(url, json={**body, "method": "nope"})
    assert "unknown saliency method" in unknown_method.json()["error"]["message"]
    assert researcher.post(url, json={**body, "campaign_id": 999999}).status_code == 404
    assert researcher.get(f"{url}/999999").status_code == 404
    assert researcher.get(url).json() == []


def test_an_alignment_without_human_maps_fails_saying_so(
    researcher: TestClient, played: Played, tiny_model: ModelSpec
) -> None:
    with played.database.session() as session:
        image_set = session.get_one(
            ImageSet, session.get_one(Campaign, played.campaign_id).image_set_id
        )
        unplayed = add_campaign(session, image_set, slug="unplayed").id
    job = researcher.post(
        "/api/admin/alignment-jobs", json={"campaign_id": unplayed, "model_name": tiny_model.name}
    ).json()
    ended = finished(researcher, job["id"])
    assert ended["state"] == "failed" and ended["result"] is None
    assert ended["error"] == "campaign 'unplayed' has no image with a human map yet"
