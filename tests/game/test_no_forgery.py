"""Players cannot forge what the server decides: a score, a time, an outcome, or who they are;
nor read other players' data. The leaderboard shows chosen display names and nothing else."""

from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.core.db import Database
from clickme.game.models import Round
from clickme.players.identity import PLAYER_COOKIE
from tests.app_fixtures import set_time_limit
from tests.game.test_routes import send, start

FORGED = {"score": 1000, "elapsed_ms": 1, "state": "correct", "outcome": "correct", "t0": 0}
LEADERBOARD_FIELDS = {"rank", "display_name", "score", "rounds", "is_me"}


def stored_round(database: Database, round_id: int) -> Round:
    with database.session() as session:
        return session.scalars(select(Round).where(Round.id == round_id)).one()


def test_a_forged_score_time_or_outcome_in_a_batch_changes_nothing(
    player: TestClient, database: Database
) -> None:
    round_ = start(player)
    # One point in a corner reveals too little for the DNN: the round is still being played.
    reveal = send(player, round_["round_id"], 1, [[1, 1, 5]], **FORGED)
    assert reveal.status_code in (200, 422)
    if reveal.status_code == 200:
        body = reveal.json()
        assert body["state"] == "playing" and body["score"] == 0
    stored = stored_round(database, round_["round_id"])
    assert stored.outcome is None and stored.score in (None, 0)


def test_finishing_early_is_refused_and_point_times_do_not_move_the_clock(
    player: TestClient, database: Database
) -> None:
    set_time_limit(database, 60_000)
    round_ = start(player)
    late_stamps = [[1, 1, 59_000], [2, 2, 59_500]]  # the client claims the time is nearly up
    assert send(player, round_["round_id"], 1, late_stamps).json()["state"] == "playing"
    finish = player.post(f"/api/rounds/{round_['round_id']}/finish")
    assert finish.status_code == 409 and finish.json()["error"]["code"] == "round_running"
    assert stored_round(database, round_["round_id"]).outcome is None


def test_a_forged_or_borrowed_identity_gets_nothing(player: TestClient) -> None:
    round_id = start(player)["round_id"]
    own_cookie = player.cookies[PLAYER_COOKIE]
    player_id, _, signature = own_cookie.partition(".")
    player.cookies.clear()
    player.cookies.set(PLAYER_COOKIE, f"{int(player_id) + 1}.{signature}")
    assert player.get("/api/players/me").status_code == 401
    assert player.get(f"/api/rounds/{round_id}").status_code == 401
    player.cookies.clear()
    player.post("/api/players", json={"consent": True})  # someone else, properly signed
    assert player.get(f"/api/rounds/{round_id}").status_code == 404
    assert player.get("/api/players/me").json()["id"] != int(player_id)


def test_the_leaderboard_shows_only_chosen_names_and_scores(player: TestClient) -> None:
    player.patch("/api/players/me", json={"display_name": "Chosen Name"})
    round_id = start(player)["round_id"]
    send(player, round_id, 1, [[1, 1, 5]])
    player.post(f"/api/rounds/{round_id}/skip")
    board = player.get("/api/leaderboard").json()
    for entry in [*board["top"], *([board["me"]] if board.get("me") else [])]:
        assert set(entry) == LEADERBOARD_FIELDS
    assert "Chosen Name" in {entry["display_name"] for entry in board["top"]} | {
        (board.get("me") or {}).get("display_name")
    }
