"""Rounds ended over HTTP retire their image by reliability, measured after the response."""

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from clickme.app import create_app
from clickme.campaigns.models import Campaign, ImagePlays
from clickme.campaigns.schemas import CampaignUpdate
from clickme.campaigns.service import update_campaign
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.images.models import Image
from clickme.scoring.scorer import Scorer
from tests.app_fixtures import age
from tests.players.painting import box_stroke, new_player, start

PLAYED_IMAGES = 2


def play_to_the_end(client: TestClient, database: Database) -> str:
    """One round painting the same box as everyone, ended by the DNN or by the clock (its time
    limit passed by ageing the round); its outcome."""
    round_ = start(client)
    url = f"/api/rounds/{round_['round_id']}"
    points = box_stroke(0.3, 0.3, 0.3)(round_)
    reveal = client.post(f"{url}/points", json={"seq": 1, "points": points}).json()
    if reveal["state"] != "playing":
        return reveal["state"]
    age(client, database, round_["round_id"], round_["time_limit_ms"] / 1000 + 0.05, True)
    finished = client.post(f"{url}/finish")
    assert finished.status_code == 200, finished.text
    return finished.json()["outcome"]


def test_ended_rounds_retire_their_images(
    game_settings: Settings, shared_scorer: Scorer, database: Database
) -> None:
    with database.session() as session:
        campaign = session.scalars(select(Campaign)).one()
        body = CampaignUpdate(retire_at_reliability=0.5)
        update_campaign(session, campaign, body)
        played = select(Image.id).order_by(Image.id).limit(PLAYED_IMAGES).scalar_subquery()
        session.execute(update(Image).where(Image.id.not_in(played)).values(is_catch=True))
    with TestClient(create_app(game_settings, scorer=shared_scorer)) as client:
        for _player in range(5):  # a map needs 5 valid rounds
            new_player(client)
            outcomes = {play_to_the_end(client, database) for _ in range(PLAYED_IMAGES)}
            assert outcomes <= {"correct", "timeout"}
    # the app has stopped: its background measurements are done
    with database.session() as session:
        rows = session.scalars(select(ImagePlays).where(ImagePlays.plays > 0)).all()
        assert len(rows) == PLAYED_IMAGES
        for row in rows:
            assert (row.plays, row.reliability_rounds, row.retired_by_reliability) == (5, 5, True)
            assert row.reliability > 0.99  # everyone painted the same box
    with TestClient(create_app(game_settings, scorer=shared_scorer)) as client:
        new_player(client)
        refused = client.post("/api/rounds", json={})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "campaign_complete"
