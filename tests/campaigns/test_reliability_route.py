"""The console's reliability route: ceiling, floor, curve, estimate, measured in the background
and kept (both DBs)."""

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from clickme.campaigns.models import Campaign, ImagePlays
from clickme.core.db import Database
from clickme.images.models import Image
from clickme.insights.flags import raise_flag
from tests.accounts.staff import add_staff_user, staff_headers
from tests.exports.fill import add_players, add_rounds
from tests.maps.painters import painter

PLAYERS = 8
WAIT_S = 120


def fill(database: Database, players: int, seed: int, images: int = 5) -> int:
    """Rounds of new consistent players on the first images of the default campaign; its id."""
    with database.session() as session:
        campaign = session.scalars(select(Campaign)).one()
        chosen = select(Image).where(Image.is_catch.is_(False)).order_by(Image.id).limit(images)
        add_rounds(
            session,
            campaign,
            list(session.scalars(chosen)),
            add_players(session, players),
            seed=seed,
            painter=painter(),
        )
        return campaign.id


def ask(client: TestClient, headers: dict[str, str], campaign_id: int, query: str = "") -> dict:
    response = client.get(f"/api/admin/campaigns/{campaign_id}/reliability{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def measured(
    client: TestClient, headers: dict[str, str], campaign_id: int, query: str = ""
) -> dict:
    """The answer once no measurement is under way (as the console asks again)."""
    deadline = time.monotonic() + WAIT_S
    while (body := ask(client, headers, campaign_id, query))["measuring"]:
        assert time.monotonic() < deadline, "the measurement never ended"
        time.sleep(0.05)
    return body


def test_reliability_of_consistent_players(client: TestClient, database: Database) -> None:
    add_staff_user(database, "researcher@example.org", "researcher")
    headers = staff_headers(database, "researcher@example.org")
    campaign_id = fill(database, PLAYERS, seed=0)
    first = ask(client, headers, campaign_id)
    assert first["measuring"] and first["measurement"] is None  # answered at once
    body = measured(client, headers, campaign_id)["measurement"]
    assert body["rounds_measured"] == 5 * PLAYERS
    assert (body["images_mapped"], body["images_measured"], body["curve_images"]) == (5, 5, 5)
    assert body["splits"] == 20 and body["max_players_measured"] == 50
    assert (body["min_points"], body["min_rounds"]) == (2, 5)  # the map settings used
    ceiling, floor = body["ceiling"], body["floor"]
    assert ceiling["ci_low"] <= ceiling["value"] <= ceiling["ci_high"]
    assert ceiling["value"] == pytest.approx(2 * ceiling["raw"] / (1 + ceiling["raw"]), abs=0.02)
    assert floor["value"] < 0.5 < 0.8 < ceiling["value"]
    assert body["flagged_players"] == 0 and body["ceiling_without_flagged"] == ceiling
    curve = body["curve"]
    assert [point["players"] for point in curve] == list(range(2, PLAYERS + 1))
    assert all(point["images"] == 5 for point in curve)
    assert curve[0]["reliability"] < curve[-1]["reliability"]
    assert abs(curve[-1]["reliability"] - ceiling["value"]) < 0.05
    estimate = body["estimate"]
    assert estimate["target"] == 0.8 and estimate["target_source"] == "default"
    assert estimate["images"] == 5 and estimate["more_plays_per_image"] == 0

    asked = ask(client, headers, campaign_id, "?target=0.999")
    assert not asked["measuring"] and asked["measurement"]["curve"] == curve  # kept
    estimate = asked["measurement"]["estimate"]
    assert estimate["target_source"] == "query" and estimate["players_needed"] > PLAYERS
    assert estimate["more_plays_per_image"] == estimate["players_needed"] - PLAYERS
    for bad in ("0", "1", "nan", "x"):
        refused = client.get(
            f"/api/admin/campaigns/{campaign_id}/reliability?target={bad}", headers=headers
        )
        assert refused.status_code == 422
    missing = client.get("/api/admin/campaigns/999/reliability", headers=headers)
    assert missing.status_code == 404


def test_the_measurement_is_kept_until_rounds_grow(client: TestClient, database: Database) -> None:
    add_staff_user(database, "admin@example.org", "admin")
    headers = staff_headers(database, "admin@example.org")
    campaign_id = fill(database, 5, seed=0)  # 25 rounds (a map needs 5)
    first = measured(client, headers, campaign_id)
    assert first["measurement"]["rounds_measured"] == 25
    assert first["images_retired_by_reliability"] == 0
    fill(database, 1, seed=1, images=1)  # 26 rounds: within 5%, the measurement stands
    assert ask(client, headers, campaign_id) == first
    with database.session() as session:
        session.execute(
            update(ImagePlays)
            .where(ImagePlays.campaign_id == campaign_id, ImagePlays.image_id == 1)
            .values(retired_by_reliability=True)
        )
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(retire_at_reliability=0.9)
        )
    counted = ask(client, headers, campaign_id)  # the count and the target are always fresh
    assert counted["images_retired_by_reliability"] == 1 and not counted["measuring"]
    assert counted["measurement"]["estimate"]["target_source"] == "campaign"
    fill(database, 1, seed=2, images=1)  # 27 rounds: measured again, the old one shown meanwhile
    again = ask(client, headers, campaign_id)
    assert again["measuring"] and again["measurement"]["rounds_measured"] == 25
    assert measured(client, headers, campaign_id)["measurement"]["rounds_measured"] == 27


def test_no_map_yet(client: TestClient, database: Database) -> None:
    add_staff_user(database, "admin@example.org", "admin")
    headers = staff_headers(database, "admin@example.org")
    campaign_id = fill(database, 1, seed=0)  # one round per image: no map
    body = measured(client, headers, campaign_id)["measurement"]
    assert (body["images_mapped"], body["ceiling"], body["floor"]) == (0, None, None)
    assert (body["curve"], body["estimate"]) == ([], None)


def test_the_ceiling_without_flagged_players(client: TestClient, database: Database) -> None:
    """Careless players with an open flag pull the ceiling down; without them it rises."""
    add_staff_user(database, "researcher@example.org", "researcher")
    headers = staff_headers(database, "researcher@example.org")
    campaign_id = fill(database, PLAYERS, seed=0)
    with database.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        images = list(session.scalars(select(Image).where(Image.is_catch.is_(False)).limit(5)))
        careless = add_players(session, PLAYERS)
        add_rounds(session, campaign, images, careless, seed=5, painter=painter(careless=True))
        for player_id in careless:
            raise_flag(session, player_id, "far_from_consensus", "maps far from the others'")
    body = measured(client, headers, campaign_id)["measurement"]
    assert body["flagged_players"] == PLAYERS
    assert body["ceiling_without_flagged"]["value"] > body["ceiling"]["value"] + 0.05
