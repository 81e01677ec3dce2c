"""A campaign's pictures through the API: stats, image cards and human maps from real rounds."""

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PilImage
from sqlalchemy import select

from clickme.campaigns.models import Campaign
from clickme.campaigns.service import reveal_rule
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.images.models import Image
from clickme.maps.service import image_map, mapped_rounds
from clickme.scoring.reveal import PreparedImageCache
from tests.accounts.staff import add_staff_user, sign_in
from tests.app_fixtures import age
from tests.players.painting import box_stroke, new_player, start

TOP_LEFT = box_stroke(0.0, 0.0, 0.35)
BOTTOM_RIGHT = box_stroke(0.65, 0.65, 0.35)
# Regions of the 224 x 224 crop well inside (and far from) the painted boxes.
TOP_LEFT_INSIDE = (slice(10, 60), slice(10, 60))
BOTTOM_RIGHT_INSIDE = (slice(165, 214), slice(165, 214))


def play_to_the_end(client: TestClient, database: Database, stroke) -> dict:
    """A round painted with the stroke, then left to time out (its time limit passed by ageing
    the round) unless the DNN got it first."""
    round_ = start(client)
    response = client.post(
        f"/api/rounds/{round_['round_id']}/points",
        json={"seq": 1, "points": stroke(round_), "pointer_type": "mouse"},
    )
    assert response.status_code == 200, response.text
    if response.json()["state"] == "playing":
        age(client, database, round_["round_id"], round_["time_limit_ms"] / 1000 + 0.05, True)
        finished = client.post(f"/api/rounds/{round_['round_id']}/finish")
        assert finished.status_code == 200, finished.text
    return round_


def play_campaign(client: TestClient, settings: Settings, database: Database) -> dict:
    """Player A paints the top left of all five photos, B the bottom right of one, C skips one
    (skipped rounds give their play back and are in no map)."""
    new_player(client)
    for _ in range(5):
        play_to_the_end(client, database, TOP_LEFT)
    b = new_player(client)
    shared_image = play_to_the_end(client, database, BOTTOM_RIGHT)["image"]["id"]
    new_player(client)
    skipped = start(client)["round_id"]
    assert client.post(f"/api/rounds/{skipped}/skip").status_code == 200
    with database.session() as session:
        campaign_id = session.scalar(select(Campaign.id))
    return {"campaign": campaign_id, "b": b, "shared_image": shared_image}


def map_of(database: Database, campaign_id: int, image_id: int) -> np.ndarray:
    with database.session() as session:
        image = session.get_one(Image, image_id)
        query = mapped_rounds(session, campaign_id).where(Round.image_id == image_id)
        rounds = list(session.scalars(query))
        return image_map(session, image, rounds)


def photo_crop(database: Database, settings: Settings, campaign_id: int, image_id: int):
    with database.session() as session:
        image = session.get_one(Image, image_id)
        rule = reveal_rule(session.get_one(Campaign, campaign_id))
        return PreparedImageCache(1).get(settings.images_dir / image.file_name, rule).pixels


def test_stats_images_and_maps_follow_the_rounds(
    client: TestClient, game_settings: Settings, database: Database
) -> None:
    played = play_campaign(client, game_settings, database)
    campaign_id, shared = played["campaign"], played["shared_image"]
    add_staff_user(database, "researcher@example.org", "researcher")
    client.cookies.clear()
    sign_in(client, "researcher@example.org")
    base = f"/api/admin/campaigns/{campaign_id}"

    stats = client.get(f"{base}/stats").json()
    assert len(stats["hours"]) == 7 * 24 and sum(h["rounds"] for h in stats["hours"]) == 7
    bins = stats["revealed_bins"]
    assert len(bins) == 10 and sum(b["rounds"] for b in bins) == stats["rounds_measured"] == 6
    assert all(
        b["success_rate"] == (b["correct"] / b["rounds"] if b["rounds"] else None) for b in bins
    )
    assert 0.05 < stats["median_revealed"] < 0.25  # a 0.35 x 0.35 box and the brush's fringe
    listed = {c["id"]: c for c in client.get("/api/admin/campaigns").json()}[campaign_id]
    assert listed["progress"]["median_revealed"] == stats["median_revealed"]

    page = client.get(f"{base}/images").json()
    assert page["total"] == 5 and len(page["images"]) == 5
    cards = {card["id"]: card for card in page["images"]}
    assert cards[shared]["mapped_rounds"] == 2 and page["images"][0]["id"] == shared
    assert all(card["plays"] == card["mapped_rounds"] for card in cards.values())
    assert all(card["map_url"] and card["class_name"] for card in cards.values())

    both = map_of(database, campaign_id, shared)
    assert both[TOP_LEFT_INSIDE].mean() > 0.45 and both[BOTTOM_RIGHT_INSIDE].mean() > 0.45
    assert both[100:124, 100:124].max() == 0

    response = client.get(cards[shared]["map_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    png = np.asarray(PilImage.open(io.BytesIO(response.content)).convert("RGB"), dtype=float)
    assert png.shape == (224, 224, 3)
    photo = photo_crop(database, game_settings, campaign_id, shared).astype(float)
    change = np.abs(png - photo).mean(axis=2)
    assert change[TOP_LEFT_INSIDE].mean() > 30 and change[BOTTOM_RIGHT_INSIDE].mean() > 30
    assert change[100:124, 100:124].max() <= 1  # where nobody painted the photo shows plainly


def test_an_excluded_players_rounds_leave_the_maps_and_stats(
    client: TestClient, game_settings: Settings, database: Database
) -> None:
    played = play_campaign(client, game_settings, database)
    campaign_id, shared = played["campaign"], played["shared_image"]
    add_staff_user(database, "admin@example.org", "admin")
    client.cookies.clear()
    csrf = sign_in(client, "admin@example.org")
    excluded = client.post(
        f"/api/admin/players/{played['b']}/exclude",
        json={"reason": "paints the wrong corner"},
        headers={"X-CSRF-Token": csrf},
    )
    assert excluded.status_code == 201, excluded.text

    only_a = map_of(database, campaign_id, shared)
    assert only_a[TOP_LEFT_INSIDE].min() > 0.5 and only_a[BOTTOM_RIGHT_INSIDE].max() == 0
    stats = client.get(f"/api/admin/campaigns/{campaign_id}/stats").json()
    assert sum(b["rounds"] for b in stats["revealed_bins"]) == stats["rounds_measured"] == 5
    cards = client.get(f"/api/admin/campaigns/{campaign_id}/images").json()["images"]
    assert all(card["mapped_rounds"] == 1 for card in cards)


def test_no_map_before_a_round_and_none_outside_the_campaign(
    client: TestClient, database: Database
) -> None:
    add_staff_user(database, "admin@example.org", "admin")
    sign_in(client, "admin@example.org")
    with database.session() as session:
        campaign_id = session.scalar(select(Campaign.id))
        image_id = session.scalar(select(Image.id))
    base = f"/api/admin/campaigns/{campaign_id}"
    stats = client.get(f"{base}/stats").json()
    assert stats["median_revealed"] is None and stats["rounds_measured"] == 0
    assert all(b["rounds"] == 0 and b["success_rate"] is None for b in stats["revealed_bins"])
    assert all(card["map_url"] is None for card in client.get(f"{base}/images").json()["images"])
    missing = client.get(f"{base}/images/{image_id}/map.png")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_map_yet"
    assert client.get(f"{base}/images/999999/map.png").status_code == 404
    assert client.get("/api/admin/campaigns/999999/stats").status_code == 404
