"""The participant's path through a recruited campaign: its public description, the rounds, and
the completion (or screened-out) code only once the campaign's number of images is played."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clickme.campaigns import service
from clickme.campaigns.schemas import CampaignCreate
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.images.models import ImageSet
from clickme.insights.completion import with_code
from clickme.players.models import Player
from clickme.players.service import exclude_player
from clickme.scoring.tables import DnnModel
from tests.app_fixtures import age
from tests.players.painting import box_stroke

SLUG = "study-1"
PROLIFIC = {"PROLIFIC_PID": "abc123", "STUDY_ID": "s1", "SESSION_ID": "x1"}
MTURK = {"workerId": "W123", "assignmentId": "A123", "hitId": "H123"}
CODES = {"completion_code": "C0MPLETE", "screened_out_code": "SCREENED"}
PROLIFIC_URL = "https://app.prolific.com/submissions/complete"
PUBLIC_FIELDS = {
    "slug",
    "name",
    "consent_text",
    "instructions_text",
    "time_limit_ms",
    "top_k",
    "images_per_player",
    "sample_image_url",
}


@pytest.fixture
def make_campaign(client: TestClient, database: Database) -> Callable[..., int]:
    """An active campaign on the demo photos (the client's app is up, so they are imported);
    its completion needs no valid round unless set (the effort rule: tests/game/test_fair_play)."""

    def make(state: str = "active", **settings: object) -> int:
        settings.setdefault("min_valid_rounds_for_completion", 0)
        with database.session() as session:
            body = CampaignCreate(
                name="Study 1",
                slug=SLUG,
                image_set_id=session.scalar(select(ImageSet.id).where(ImageSet.name == "demo")),
                model_id=session.scalar(select(DnnModel.id)),
                consent_text="<b>Consent</b> to study 1",
                instructions_text="Paint the animal.",
                **settings,
            )
            campaign = service.create_campaign(session, body)
            if state != "draft":
                service.change_state(session, campaign, "active")
            if state not in ("draft", "active"):
                service.change_state(session, campaign, state)
            return campaign.id

    return make


def join(client: TestClient, recruitment: dict[str, str]) -> int:
    response = client.post("/api/players", json={"consent": True, **recruitment})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def start(client: TestClient) -> dict:
    """A new round, its photo shown at once (its clock running), as the game does."""
    response = client.post("/api/rounds", json={"campaign": SLUG})
    assert response.status_code == 201, response.text
    assert client.post(f"/api/rounds/{response.json()['round_id']}/start").status_code == 200
    return response.json()


def skip(client: TestClient, round_: dict) -> None:
    assert client.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200


def play_one(client: TestClient) -> int:
    """Start a round of the campaign and skip it; the image id."""
    round_ = start(client)
    skip(client, round_)
    return round_["image"]["id"]


def completion(client: TestClient):
    return client.get(f"/api/campaigns/{SLUG}/completion")


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_the_public_description_hides_codes_and_ids(
    client: TestClient, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=3, completion_url=PROLIFIC_URL, **CODES)
    response = client.get(f"/api/campaigns/{SLUG}")  # no player, no staff session
    assert response.status_code == 200, response.text
    info = response.json()
    assert set(info) == PUBLIC_FIELDS
    assert info["consent_text"] == "<b>Consent</b> to study 1"
    assert info["instructions_text"] == "Paint the animal."
    assert (info["time_limit_ms"], info["top_k"], info["images_per_player"]) == (7000, 5, 3)
    assert client.get(info["sample_image_url"]).status_code == 200
    for secret in ("C0MPLETE", "SCREENED", "prolific.com"):
        assert secret not in response.text

    missing = client.get("/api/campaigns/no-such-study")
    assert missing.status_code == 404 and error_code(missing) == "campaign_not_found"
    join(client, PROLIFIC)
    for bad in ("Not%20A%20Slug", "a%00b", "x" * 101):
        for path in (f"/api/campaigns/{bad}", f"/api/campaigns/{bad}/completion"):
            response = client.get(path)
            assert response.status_code == 422, (path, response.text)


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("draft", "campaign_not_started"),
        ("paused", "campaign_paused"),
        ("completed", "campaign_finished"),
    ],
)
def test_only_an_active_campaign_is_described(
    client: TestClient, make_campaign: Callable[..., int], state: str, code: str
) -> None:
    """The refusal names the state, so the game can say which (not started, paused, finished)."""
    make_campaign(state=state)
    response = client.get(f"/api/campaigns/{SLUG}")
    assert response.status_code == 409 and error_code(response) == code


def test_the_code_comes_only_after_the_campaigns_number_of_images(
    client: TestClient, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=2, completion_url=f"{PROLIFIC_URL}?x=1", **CODES)
    assert error_code(completion(client)) == "no_player"
    join(client, PROLIFIC)
    early = completion(client)
    assert early.status_code == 409 and error_code(early) == "not_finished"
    assert "2 of your 2 images" in early.json()["error"]["message"]

    play_one(client)
    running = start(client)  # the second image, still being played
    assert error_code(completion(client)) == "not_finished"
    refused = client.post("/api/rounds", json={"campaign": SLUG})
    assert error_code(refused) == "player_done"  # the round in flight is one of the two
    skip(client, running)

    done = completion(client)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "status": "completed",
        "code": "C0MPLETE",
        "url": f"{PROLIFIC_URL}?x=1&cc=C0MPLETE",
    }
    assert "C0MPLETE" not in client.get(f"/api/campaigns/{SLUG}").text


def test_a_round_left_running_past_its_time_counts_as_played(
    client: TestClient,
    database: Database,
    game_settings: Settings,
    make_campaign: Callable[..., int],
) -> None:
    make_campaign(max_images_per_player=1, **CODES)
    join(client, PROLIFIC)
    round_ = start(client)  # the participant closes the page: the round is never finished
    assert error_code(completion(client)) == "not_finished"
    past = (round_["time_limit_ms"] + game_settings.round_grace_ms) / 1000 + 0.1
    age(client, database, round_["round_id"], past, shown_too=True)
    done = completion(client)
    assert done.status_code == 200, done.text
    assert done.json()["code"] == "C0MPLETE" and done.json()["url"] is None  # no URL set


def test_an_excluded_player_gets_the_screened_out_code(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=1, completion_url=PROLIFIC_URL, **CODES)
    player_id = join(client, PROLIFIC)
    play_one(client)
    with database.session() as session:
        exclude_player(session, player_id, "answered at random", None)
    answer = completion(client).json()
    assert answer == {
        "status": "screened_out",
        "code": "SCREENED",
        "url": f"{PROLIFIC_URL}?cc=SCREENED",
    }


def test_a_player_who_paints_everything_is_screened_out_at_completion(
    client: TestClient, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=1, **CODES)
    join(client, PROLIFIC)
    round_ = start(client)
    points = box_stroke(0.0, 0.0, 1.0)(round_)
    reveal = client.post(
        f"/api/rounds/{round_['round_id']}/points",
        json={"seq": 1, "points": points, "pointer_type": "mouse"},
    )
    assert reveal.status_code == 200, reveal.text
    skip(client, round_)
    answer = completion(client).json()
    assert (answer["status"], answer["code"]) == ("screened_out", "SCREENED")


def test_an_mturk_worker_gets_the_code_to_paste_and_no_redirect(
    client: TestClient, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=1, completion_url=PROLIFIC_URL, **CODES)
    join(client, MTURK)
    play_one(client)
    assert completion(client).json() == {"status": "completed", "code": "C0MPLETE", "url": None}


def test_an_mturk_preview_creates_nobody_and_gets_no_code(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=1, **CODES)
    preview = {**MTURK, "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"}
    response = client.post("/api/players", json={"consent": True, **preview})
    assert response.json() == {"preview": True} and "set-cookie" not in response.headers
    assert client.get(f"/api/campaigns/{SLUG}").status_code == 200  # the how-to still shows
    assert error_code(completion(client)) == "no_player"
    with database.session() as session:
        assert session.scalar(select(func.count(Player.id))) == 0


def test_a_returning_participant_continues_where_they_were(
    client: TestClient, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=2, completion_url=PROLIFIC_URL, **CODES)
    player_id = join(client, PROLIFIC)
    first_image = play_one(client)

    client.cookies.clear()  # another browser, the same Prolific participant
    assert join(client, {**PROLIFIC, "SESSION_ID": "x2"}) == player_id
    assert error_code(completion(client)) == "not_finished"
    assert play_one(client) != first_image
    code = completion(client).json()["code"]

    client.cookies.clear()  # back once more after finishing: the same code again
    assert join(client, PROLIFIC) == player_id
    refused = client.post("/api/rounds", json={"campaign": SLUG})
    assert error_code(refused) == "player_done"
    assert completion(client).json()["code"] == code == "C0MPLETE"


def test_completion_needs_a_number_of_images_and_a_started_campaign(
    client: TestClient, make_campaign: Callable[..., int]
) -> None:
    join(client, PROLIFIC)
    default = client.get("/api/campaigns/default/completion")
    assert default.status_code == 409 and error_code(default) == "no_completion"
    make_campaign(state="draft", max_images_per_player=1, **CODES)
    assert error_code(completion(client)) == "campaign_not_found"


def test_a_finished_player_keeps_their_code_after_the_campaign_is_completed(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    campaign_id = make_campaign(max_images_per_player=1, **CODES)
    join(client, PROLIFIC)
    play_one(client)
    with database.session() as session:
        service.change_state(session, service.get_campaign(session, campaign_id), "completed")
    assert completion(client).json()["code"] == "C0MPLETE"


def test_the_code_replaces_any_code_already_in_the_url() -> None:
    assert with_code("https://x.org/done?cc=OLD&a=b", "NEW") == "https://x.org/done?a=b&cc=NEW"
    assert with_code("https://x.org/", "A B") == "https://x.org/?cc=A+B"
