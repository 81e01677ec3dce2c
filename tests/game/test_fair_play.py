"""Empty, zero-effort and replayed play cannot spoil a study (both databases, through the API):
empty rounds do not exhaust a campaign, a lazy participant gets no completion code, a repeated
batch never reaches the DNN; an honest player's game is unchanged."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.campaigns import service as campaigns
from clickme.campaigns.models import ImagePlays
from clickme.campaigns.schemas import CampaignCreate
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.images.models import ImageSet
from clickme.players.models import PlayerFlag
from clickme.scoring.tables import DnnModel
from tests.app_fixtures import age

SLUG = "study"
TIME_LIMIT_MS = 7000  # the campaigns' (the default): time passes by ageing rounds, not waiting
CODES = {"completion_code": "C0MPLETE", "screened_out_code": "SCREENED"}
PROLIFIC = {"PROLIFIC_PID": "p{}", "STUDY_ID": "s1", "SESSION_ID": "x{}"}


@pytest.fixture
def make_campaign(client: TestClient, database: Database) -> Callable[..., int]:
    """An active campaign on the five demo photos."""

    def make(**settings: object) -> int:
        with database.session() as session:
            body = CampaignCreate(
                name="Study",
                slug=SLUG,
                image_set_id=session.scalar(select(ImageSet.id).where(ImageSet.name == "demo")),
                model_id=session.scalar(select(DnnModel.id)),
                **settings,
            )
            campaign = campaigns.create_campaign(session, body)
            campaigns.change_state(session, campaign, "active")
            return campaign.id

    return make


def join(client: TestClient, number: int = 0) -> int:
    """A new player (a new participant when ``number`` is given) for this client."""
    recruitment = {key: value.format(number) for key, value in PROLIFIC.items()}
    client.cookies.clear()
    response = client.post("/api/players", json={"consent": True, **recruitment})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def start(client: TestClient):
    """A new round whose photo the player then has on screen (its clock runs, as in the game)."""
    response = client.post("/api/rounds", json={"campaign": SLUG})
    if response.status_code == 201:
        shown = client.post(f"/api/rounds/{response.json()['round_id']}/start")
        assert shown.status_code == 200, shown.text
    return response


def paint(client: TestClient, round_: dict, seq: int = 1, n: int = 6):
    """A few points near the photo's centre (never enough for the DNN on a blurred photo)."""
    width, height = round_["image"]["width"], round_["image"]["height"]
    points = [[width / 2 + i, height / 2, 40 * i] for i in range(n)]
    return client.post(
        f"/api/rounds/{round_['round_id']}/points",
        json={"seq": seq, "points": points, "pointer_type": "mouse"},
    )


def run_out(client: TestClient, database: Database, round_id: int, grace_ms: int = 0) -> None:
    """The round's time limit (and the grace) passes, without the test waiting for it."""
    past = (TIME_LIMIT_MS + grace_ms) / 1000 + 0.05
    age(client, database, round_id, past, shown_too=True)


def play_valid(client: TestClient, database: Database) -> dict:
    """An honest round: paint, then let the time run out and finish."""
    round_ = start(client).json()
    assert paint(client, round_).status_code == 200
    run_out(client, database, round_["round_id"])
    finished = client.post(f"/api/rounds/{round_['round_id']}/finish")
    assert finished.status_code == 200, finished.text
    assert finished.json()["outcome"] in ("timeout", "correct")
    return round_


def plays(database: Database, campaign_id: int) -> dict[int, int]:
    with database.session() as session:
        rows = session.execute(
            select(ImagePlays.image_id, ImagePlays.plays).where(
                ImagePlays.campaign_id == campaign_id
            )
        )
        return dict(rows.all())


def test_empty_rounds_cannot_exhaust_a_campaign(
    client: TestClient,
    database: Database,
    game_settings: Settings,
    make_campaign: Callable[..., int],
) -> None:
    """Two players start round after round without painting: they never hold more than their
    one round in flight each, and once those time out every play is back."""
    campaign_id = make_campaign(plays_wanted_per_image=2)
    attackers = []
    for number in range(2):
        attackers.append(join(client, number))
        while start(client).status_code == 201:  # each start abandons the previous round
            pass
        assert start(client).json()["error"]["code"] == "no_images_left"
    assert sum(plays(database, campaign_id).values()) == 2  # the two rounds in flight
    join(client, 99)
    assert start(client).status_code == 201  # a real player still gets an image
    with database.session() as session:  # the time limit and the grace pass for every round
        in_flight = session.scalars(select(Round.id).where(Round.outcome.is_(None))).all()
    for round_id in in_flight:
        run_out(client, database, round_id, game_settings.round_grace_ms)
    join(client, 98)
    assert start(client).status_code == 201  # the expired empty rounds gave their plays back
    # Only that last round holds a play: every expired empty round gave its play back.
    assert sum(plays(database, campaign_id).values()) == 1
    with database.session() as session:
        outcomes = session.scalars(
            select(Round.outcome).where(Round.player_id.in_(attackers)).order_by(Round.id)
        ).all()
    assert outcomes == ["abandoned"] * 4 + ["timeout"] + ["abandoned"] * 4 + ["timeout"]


def test_a_round_with_too_few_points_gives_its_play_back_when_it_ends(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    campaign_id = make_campaign(plays_wanted_per_image=1)
    join(client, 1)
    round_ = start(client).json()
    assert paint(client, round_, n=1).status_code == 200  # one point: no round for the maps
    run_out(client, database, round_["round_id"])
    # Whatever its outcome (a lucky single point can even win), it holds no play.
    ended = client.post(f"/api/rounds/{round_['round_id']}/finish").json()["outcome"]
    assert ended in ("timeout", "correct")
    assert plays(database, campaign_id)[round_["image"]["id"]] == 0
    honest = play_valid(client, database)
    assert plays(database, campaign_id)[honest["image"]["id"]] == 1  # a valid round keeps it


def completion(client: TestClient) -> dict:
    response = client.get(f"/api/campaigns/{SLUG}/completion")
    assert response.status_code == 200, response.text
    return response.json()


def open_flags(database: Database, player_id: int) -> dict[str, str]:
    with database.session() as session:
        flags = session.scalars(
            select(PlayerFlag).where(
                PlayerFlag.player_id == player_id, PlayerFlag.resolved.is_(False)
            )
        )
        return {flag.kind: flag.reason for flag in flags}


def test_a_participant_who_skips_everything_gets_the_screened_out_code(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=3, **CODES)
    player_id = join(client, 1)
    for _ in range(3):
        round_ = start(client).json()
        assert client.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200
    answer = completion(client)
    assert (answer["status"], answer["code"]) == ("screened_out", "SCREENED")
    flags = open_flags(database, player_id)
    assert flags["too_little_effort"] == "0 valid rounds in campaign 'study', 2 needed"
    assert "3 of 3 rounds empty or skipped within 1 s" in flags["no_effort"]


def test_a_participant_who_waits_without_painting_gets_the_screened_out_code(
    client: TestClient,
    database: Database,
    game_settings: Settings,
    make_campaign: Callable[..., int],
) -> None:
    make_campaign(max_images_per_player=3, **CODES)
    player_id = join(client, 1)
    for _ in range(3):
        round_ = start(client)
        assert round_.status_code == 201
        run_out(client, database, round_.json()["round_id"], game_settings.round_grace_ms)
    answer = completion(client)
    assert (answer["status"], answer["code"]) == ("screened_out", "SCREENED")
    assert set(open_flags(database, player_id)) == {"too_little_effort", "no_effort"}


def test_an_honest_participant_gets_the_completion_code(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    make_campaign(max_images_per_player=3, **CODES)
    player_id = join(client, 1)
    shown = [play_valid(client, database)["image"]["id"] for _ in range(2)]
    skipped = start(client).json()  # one odd photo skipped: still enough effort (2 of 3)
    assert client.post(f"/api/rounds/{skipped['round_id']}/skip").status_code == 200
    assert len({*shown, skipped["image"]["id"]}) == 3
    answer = completion(client)
    assert (answer["status"], answer["code"]) == ("completed", "C0MPLETE")
    assert open_flags(database, player_id) == {}


def test_the_campaign_sets_the_valid_rounds_completion_needs(
    client: TestClient, database: Database, make_campaign: Callable[..., int]
) -> None:
    """One valid round of two: enough by default (half, rounded up), not when 2 are set."""
    make_campaign(max_images_per_player=2, min_valid_rounds_for_completion=2, **CODES)
    join(client, 1)
    play_valid(client, database)
    round_ = start(client).json()
    assert client.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200
    assert completion(client)["code"] == "SCREENED"


@pytest.fixture
def scorer_calls(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the DNN's runs."""
    scorer = client.app.state.runtime.scorer
    calls: list[int] = []
    send = scorer.send

    def counting(model_input):
        calls.append(1)
        return send(model_input)

    monkeypatch.setattr(scorer, "send", counting)
    return calls


def test_a_repeated_batch_never_reaches_the_dnn(
    client: TestClient, make_campaign: Callable[..., int], scorer_calls: list[int]
) -> None:
    make_campaign()
    join(client, 1)
    round_ = start(client).json()
    first = paint(client, round_)
    assert first.status_code == 200 and len(scorer_calls) == 1
    again = paint(client, round_)
    assert again.status_code == 200 and len(scorer_calls) == 1
    assert again.json() == {**first.json(), "duplicate": True}
    assert client.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200
    ended = client.get(f"/api/rounds/{round_['round_id']}").json()["outcome"]
    assert ended in ("skip", "correct")  # skipped, unless the DNN got it at once
    for _ in range(10):  # the replay after the end: answered as decided, the DNN left alone
        replay = paint(client, round_)
        assert replay.status_code == 200
        assert replay.json()["state"] == ended and replay.json()["duplicate"]
        assert replay.json()["guesses"] == first.json()["guesses"]
    assert len(scorer_calls) == 1
    late = paint(client, round_, seq=2)
    assert late.status_code == 409 and late.json()["error"]["code"] == "round_ended"
    assert len(scorer_calls) == 1


def test_an_honest_players_game_is_unchanged(player: TestClient, scorer_calls: list[int]) -> None:
    """The demo campaign: every batch answered by the DNN, in order, the round finished."""
    round_ = player.post("/api/rounds", json={}).json()
    for seq in (1, 2, 3):
        reveal = paint(player, round_, seq=seq)
        assert reveal.status_code == 200, reveal.text
        assert not reveal.json()["duplicate"] and len(reveal.json()["guesses"]) == 5
        if reveal.json()["state"] != "playing":
            break
    assert len(scorer_calls) == seq
    result = player.get(f"/api/rounds/{round_['round_id']}").json()
    assert result["outcome"] in (None, "correct")
    assert player.post("/api/rounds", json={}).status_code == 201  # and the next round
