"""Images nobody can win: measured in the background when a campaign starts, listed for the
console, and left out of assignment when the campaign says so (both DBs)."""

import time

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from clickme.campaigns.models import ImagePlays
from clickme.core.db import Database
from clickme.game import service as game
from clickme.images.models import Image, ImageSet
from clickme.images.transform import load_rgb, to_eval_space
from clickme.scoring.tables import DnnModel
from tests.accounts.staff import add_staff_user, staff_headers
from tests.campaigns.conftest import GRACE_MS, RULE, START_BOUND_S, World, load

WAIT_S = 120


def test_activation_measures_which_images_the_dnn_cannot_win(
    client: TestClient, database: Database
) -> None:
    add_staff_user(database, "admin@example.org", "admin")
    headers = staff_headers(database, "admin@example.org")
    with database.session() as session:
        image_set_id = session.scalar(select(ImageSet.id).where(ImageSet.name == "demo"))
        model_id = session.scalar(select(DnnModel.id))
    body = {"name": "Hard", "slug": "hard", "image_set_id": image_set_id, "model_id": model_id}
    created = client.post("/api/admin/campaigns", json={**body, "top_k": 1}, headers=headers)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert created.json()["leave_out_unwinnable"] is False
    started = client.post(
        f"/api/admin/campaigns/{campaign_id}/state", json={"state": "active"}, headers=headers
    )
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + WAIT_S
    while (report := client.get(f"/api/admin/campaigns/{campaign_id}/unwinnable", headers=headers)
           .json())["measured"] < report["total"]:  # fmt: skip
        assert time.monotonic() < deadline, "the measurement never ended"
        time.sleep(0.1)
    assert report["total"] == 5 and not report["left_out"]

    runtime = client.app.state.runtime
    with database.session() as session:
        images = session.scalars(select(Image).where(Image.image_set_id == image_set_id)).all()
        expected = set()
        for image in images:  # the DNN's first guess on the whole photo
            pixels = to_eval_space(load_rgb(runtime.settings.images_dir / image.file_name))
            guess = int(np.argmax(runtime.scorer.classify_batch_sync(pixels[None])[0]))
            if guess != image.class_index:
                expected.add(image.id)
    assert {image["id"] for image in report["images"]} == expected


def test_a_campaign_can_leave_unwinnable_images_out_of_assignment(world: World) -> None:
    campaign_id = world.campaign(leave_out_unwinnable=True)
    unwinnable = world.image_ids[0]
    with world.database.session() as session:
        session.execute(
            update(ImagePlays)
            .where(ImagePlays.campaign_id == campaign_id)
            .values(winnable=ImagePlays.image_id != unwinnable)
        )
    shown = []
    for player in world.add_players(6):
        with world.database.session() as session:
            campaign = load(session, campaign_id)
            new = game.start_round(session, player, campaign, (1, 1), RULE, GRACE_MS, START_BOUND_S)
            shown.append(new.image.id)
    assert unwinnable not in shown and len(set(shown)) == 2
