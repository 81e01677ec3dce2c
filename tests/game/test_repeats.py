"""The demo after its five photos (both databases, through the API): a player who has seen every
photo plays them again, as repeats marked as such that show their score but count nowhere: not
in the maps' valid rounds, the image's plays, the player's total or the leaderboard."""

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clickme.campaigns.models import Campaign, ImagePlays
from clickme.campaigns.schemas import CampaignUpdate
from clickme.campaigns.service import DEFAULT_CAMPAIGN_SLUG, update_campaign
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.game.outcomes import valid_round
from clickme.maps.aggregate import MapSettings
from clickme.maps.valid import valid_round_ids, valid_rounds
from tests.game.test_routes import grid_points, send, start

DEMO_PHOTOS = 5
RULE = MapSettings(min_rounds=1)


def win(player: TestClient, round_: dict) -> int:
    """Paint the whole photo: the DNN gets it; the round's score."""
    width, height = round_["image"]["width"], round_["image"]["height"]
    reveal = send(player, round_["round_id"], 1, grid_points(width, height, step=30)).json()
    assert reveal["state"] == "correct", reveal
    return reveal["score"]


def skip(player: TestClient, round_: dict) -> None:
    assert player.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200


def demo_campaign_id(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(Campaign.id).where(Campaign.slug == DEFAULT_CAMPAIGN_SLUG))


def plays(database: Database) -> dict[int, int]:
    with database.session() as session:
        return dict(session.execute(select(ImagePlays.image_id, ImagePlays.plays)).all())


def test_after_every_demo_photo_the_player_plays_them_again_uncounted(
    player: TestClient, database: Database
) -> None:
    first = start(player)
    assert first["repeat"] is False
    first_score = win(player, first)
    order = [first["image"]["id"]]
    for _ in range(DEMO_PHOTOS - 1):
        round_ = start(player)
        assert round_["repeat"] is False
        order.append(round_["image"]["id"])
        skip(player, round_)
    assert len(set(order)) == DEMO_PHOTOS
    plays_before = plays(database)
    assert plays_before[order[0]] == 1 and sum(plays_before.values()) == 1  # skips gave back

    sixth = start(player)  # the photo played least recently: the first
    assert sixth["repeat"] is True and sixth["image"]["id"] == order[0]
    repeat_score = win(player, sixth)
    assert repeat_score > 0  # the player sees the round's score
    result = player.get(f"/api/rounds/{sixth['round_id']}").json()
    assert result["outcome"] == "correct" and result["score"] == repeat_score
    assert result["total_score"] == first_score  # which pays nothing
    assert player.get("/api/players/me").json()["total_score"] == first_score
    me = player.get("/api/leaderboard").json()["me"]
    assert (me["score"], me["rounds"]) == (first_score, DEMO_PHOTOS)
    assert plays(database) == plays_before  # a repeat holds no play

    campaign_id = demo_campaign_id(database)
    with database.session() as session:
        assert session.get_one(Round, sixth["round_id"]).is_repeat
        assert valid_round_ids(session, campaign_id, RULE, order) == {first["round_id"]}
        (mapped,) = valid_rounds(session, campaign_id, RULE)
        assert (mapped.image_id, len(mapped.player_ids)) == (order[0], 1)
        valid = select(func.count(Round.id)).where(valid_round(RULE))
        assert session.scalar(valid) == 1  # what the completion code counts

    seventh = start(player)  # never the photo just played while there is another
    assert seventh["repeat"] is True and seventh["image"]["id"] == order[1]
    eighth = start(player)  # the seventh, abandoned, gives back no play it never held
    assert eighth["repeat"] is True and eighth["image"]["id"] == order[2]
    assert plays(database) == plays_before


def test_a_campaign_without_repeats_still_ends_after_every_photo(
    player: TestClient, database: Database
) -> None:
    with database.session() as session:
        demo = session.get_one(Campaign, demo_campaign_id(database))
        update_campaign(session, demo, CampaignUpdate(repeat_when_exhausted=False))
    for _ in range(DEMO_PHOTOS):
        skip(player, start(player))
    response = player.post("/api/rounds", json={})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_images_left"
