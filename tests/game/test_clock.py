"""The round's clock starts when its photo is on the player's screen, bounded after creation.

Rounds are aged in the database (their creation or display moved back) instead of waiting.
"""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.campaigns.models import ImagePlays
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game import service
from clickme.game.models import Round
from clickme.game.service import round_deadline
from clickme.insights.quality import measure_players
from clickme.scoring.reveal import PreparedImageCache
from tests.app_fixtures import age
from tests.game.test_routes import send
from tests.game.test_store import player_id

LIMIT_MS = 7000
BOUND_S = 20.0
# Slack for the test's own requests (a reveal runs the DNN) on a loaded machine; every delay the
# tests make is longer, so a clock counted from the wrong moment still falls outside it.
SLACK_MS = 5000


def create(client: TestClient) -> dict:
    """A new round whose photo is not on screen yet."""
    response = client.post("/api/rounds", json={"viewport_width": 390, "viewport_height": 844})
    assert response.status_code == 201, response.text
    return response.json()


def show(client: TestClient, round_id: int):
    return client.post(f"/api/rounds/{round_id}/start")


def stored(database: Database, round_id: int) -> Round:
    with database.session() as session:
        round_ = session.get_one(Round, round_id)
        session.expunge(round_)
        return round_


def plays(database: Database, image_id: int) -> int:
    with database.session() as session:
        return session.scalar(select(ImagePlays.plays).where(ImagePlays.image_id == image_id))


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_the_deadline_is_the_bound_until_shown_then_the_time_limit() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert round_deadline(created, None, LIMIT_MS, BOUND_S) == created + timedelta(seconds=20)
    shown = created + timedelta(seconds=3)
    assert round_deadline(created, shown, LIMIT_MS, BOUND_S) == shown + timedelta(seconds=7)


def test_a_slow_photo_costs_no_time(player: TestClient, database: Database) -> None:
    """The photo took 10 s to arrive: the player still gets the whole limit from then on."""
    round_ = create(player)
    assert round_["start_within_ms"] == BOUND_S * 1000
    age(player, database, round_["round_id"], 10)
    clock = show(player, round_["round_id"])
    assert clock.status_code == 200, clock.text
    body = clock.json()
    assert body["time_limit_ms"] == LIMIT_MS and 0 <= body["elapsed_ms"] < SLACK_MS
    assert 10_000 <= body["display_ms"] < 10_000 + SLACK_MS
    reveal = send(player, round_["round_id"], 1, [[5, 5, 100]])
    assert reveal.status_code == 200, reveal.text
    assert reveal.json()["state"] == "playing" and reveal.json()["elapsed_ms"] < SLACK_MS
    row = stored(database, round_["round_id"])
    assert row.shown_at is not None and row.outcome is None
    assert 10 <= (row.shown_at - row.started_at).total_seconds() < 10 + SLACK_MS / 1000


def test_the_start_call_keeps_the_facts_a_fresh_read_gives(
    player: TestClient, database: Database
) -> None:
    """The start call's hot path reads the round's facts back with its clock: the facts every
    batch then uses are those a read of the round gives."""
    round_id = create(player)["round_id"]
    assert show(player, round_id).status_code == 200
    kept = player.app.state.runtime.rounds.get(round_id)  # type: ignore[attr-defined]
    with database.session() as session:
        assert kept == service.load_facts(session, round_id, player_id(player))
    assert kept.shown_at == stored(database, round_id).shown_at


def test_a_clock_never_starts_before_the_rounds_creation(
    player: TestClient, database: Database
) -> None:
    """A round created by a process whose clock runs ahead (here by 3 s) starts its clock at
    its creation, not earlier: no time is taken from the player."""
    round_id = create(player)["round_id"]
    age(player, database, round_id, -3)
    body = show(player, round_id).json()
    row = stored(database, round_id)
    assert row.shown_at == row.started_at
    assert body["display_ms"] == 0 and body["elapsed_ms"] <= 0


def test_a_second_start_call_keeps_the_first_clock(player: TestClient, database: Database) -> None:
    """Repeated, in this process or in another that never saw the first (its facts not kept),
    the start call answers the clock the first one started and moves nothing."""
    round_id = create(player)["round_id"]
    first = show(player, round_id).json()
    shown_at = stored(database, round_id).shown_at
    again = show(player, round_id)
    player.app.state.runtime.rounds.pop(round_id)  # type: ignore[attr-defined]
    elsewhere = show(player, round_id)
    for answer in (again, elsewhere):
        assert answer.status_code == 200, answer.text
        assert answer.json()["display_ms"] == first["display_ms"]
    assert stored(database, round_id).shown_at == shown_at


def test_another_players_start_call_is_not_found_and_starts_nothing(
    client: TestClient, database: Database
) -> None:
    client.post("/api/players", json={"consent": True})
    round_id = create(client)["round_id"]
    client.cookies.clear()
    client.post("/api/players", json={"consent": True})
    refused = show(client, round_id)
    assert refused.status_code == 404 and error_code(refused) == "round_not_found"
    assert stored(database, round_id).shown_at is None


def test_a_start_past_the_bound_abandons_the_round_and_gives_its_play_back(
    player: TestClient, database: Database
) -> None:
    round_ = create(player)
    assert plays(database, round_["image"]["id"]) == 1
    age(player, database, round_["round_id"], BOUND_S + 1)
    late = show(player, round_["round_id"])
    assert late.status_code == 409 and error_code(late) == "round_ended"
    assert "abandoned" in late.json()["error"]["message"]
    row = stored(database, round_["round_id"])
    assert row.outcome == "abandoned" and row.shown_at is None and row.score == 0
    assert plays(database, round_["image"]["id"]) == 0
    result = player.get(f"/api/rounds/{round_['round_id']}").json()
    assert result["outcome"] == "abandoned" and result["elapsed_ms"] == 0
    again = show(player, round_["round_id"])
    assert again.status_code == 409 and error_code(again) == "round_ended"


@pytest.mark.parametrize("first_call", ["points", "finish", "read"])
def test_a_missing_start_past_the_bound_abandons_the_round(
    player: TestClient, database: Database, first_call: str
) -> None:
    round_ = create(player)
    round_id = round_["round_id"]
    age(player, database, round_id, BOUND_S + 1)
    if first_call == "points":
        refused = send(player, round_id, 1, [[5, 5, 6000]])
        assert refused.status_code == 409 and error_code(refused) == "round_ended"
    elif first_call == "finish":
        finished = player.post(f"/api/rounds/{round_id}/finish")
        assert finished.status_code == 200 and finished.json()["outcome"] == "abandoned"
    else:
        assert player.get(f"/api/rounds/{round_id}").json()["outcome"] == "abandoned"
    assert stored(database, round_id).outcome == "abandoned"
    assert plays(database, round_["image"]["id"]) == 0
    assert send(player, round_id, 1, [[5, 5, 0]]).status_code == 409


def test_a_missing_start_within_the_bound_is_taken_from_the_first_batch(
    player: TestClient, database: Database
) -> None:
    """Without a start call the first batch starts the clock by its points' client times, never
    earlier than the round's creation (a client claiming more only loses time)."""
    round_ = create(player)
    age(player, database, round_["round_id"], 10)
    reveal = send(player, round_["round_id"], 1, [[5, 5, 200], [9, 9, 1500]])
    assert reveal.status_code == 200, reveal.text
    assert 1500 <= reveal.json()["elapsed_ms"] < 1500 + SLACK_MS
    boastful = create(player)
    age(player, database, boastful["round_id"], 3)
    reveal = send(player, boastful["round_id"], 1, [[5, 5, 60_000]])
    assert reveal.status_code == 200, reveal.text
    assert 3000 <= reveal.json()["elapsed_ms"] < LIMIT_MS
    row = stored(database, boastful["round_id"])
    assert row.shown_at == row.started_at


def test_delaying_the_start_gains_no_time(player: TestClient, database: Database) -> None:
    """A start once made never moves (a repeat changes nothing), and a start delayed to just
    within the bound leaves the time limit from then, no more."""
    round_ = create(player)
    round_id = round_["round_id"]
    age(player, database, round_id, BOUND_S - 5)  # within the bound, with room for a slow CI
    first = show(player, round_id).json()
    assert first["elapsed_ms"] < SLACK_MS
    running = player.post(f"/api/rounds/{round_id}/finish")
    assert running.status_code == 409 and error_code(running) == "round_running"
    age(player, database, round_id, LIMIT_MS / 1000 + 1, shown_too=True)  # and the grace
    repeat = show(player, round_id)
    assert repeat.status_code == 200 and repeat.json()["elapsed_ms"] >= LIMIT_MS
    late = send(player, round_id, 1, [[5, 5, 10]])
    assert late.status_code == 409 and error_code(late) == "round_ended"
    assert "timeout" in late.json()["error"]["message"]
    row = stored(database, round_id)
    assert row.outcome == "timeout"
    assert (row.ended_at - row.started_at).total_seconds() <= BOUND_S + LIMIT_MS / 1000 + 2


def test_finish_without_a_start_counts_the_time_limit_back(
    player: TestClient, database: Database
) -> None:
    """The client's timer ran out but its start never arrived: the clock started at most the
    time limit ago, and not before the round was created."""
    early = create(player)
    age(player, database, early["round_id"], 3)
    running = player.post(f"/api/rounds/{early['round_id']}/finish")
    assert running.status_code == 409 and error_code(running) == "round_running"
    late = create(player)
    age(player, database, late["round_id"], 10)
    finished = player.post(f"/api/rounds/{late['round_id']}/finish")
    assert finished.status_code == 200 and finished.json()["outcome"] == "timeout"
    assert finished.json()["elapsed_ms"] == LIMIT_MS  # its clock, as the finish started it


def test_time_to_display_is_a_player_measure(
    player: TestClient, database: Database, game_settings: Settings
) -> None:
    for delay_s in (5, 10, 15):
        round_ = create(player)
        age(player, database, round_["round_id"], delay_s)
        assert show(player, round_["round_id"]).status_code == 200
        assert player.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200
    player_id = player.get("/api/players/me").json()["id"]
    with database.session() as session:
        cache = PreparedImageCache(8)
        measures = measure_players(session, cache, game_settings.images_dir, [player_id])
    assert 10_000 <= measures[player_id].display_ms < 10_000 + SLACK_MS  # the median
