"""Bad input on the game routes: a clear 4xx JSON error each, nothing stored, never a 500."""

import pytest
from fastapi.testclient import TestClient

from clickme.core.db import Database
from tests.game.test_routes import send, start, stored_points


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"seq": 1, "points": [[1e9, 5, 0]]}, "point_out_of_image"),
        ({"seq": 1, "points": [[-1, 5, 0]]}, "point_out_of_image"),
        ({"seq": 1, "points": [[5, 5, 10], [6, 6, 5]]}, "points_out_of_order"),
        ({"seq": 1, "points": [[5, 5, 0]] * 501}, "too_many_points"),
        ({"seq": 1, "points": []}, "invalid_request"),
        ({"seq": 0, "points": [[5, 5, 0]]}, "invalid_request"),
        ({"seq": 1, "points": [[5, 5]]}, "invalid_request"),
        ({"seq": 1, "points": [["a", 5, 0]]}, "invalid_request"),
        ({"seq": 1, "points": [[5, 5, -3]]}, "invalid_request"),
        ({"seq": 1, "points": [[5, 5, 0]], "pointer_type": "laser"}, "invalid_request"),
        ({"points": [[5, 5, 0]]}, "invalid_request"),
    ],
)
def test_bad_batches_are_refused(
    player: TestClient, database: Database, body: dict, code: str
) -> None:
    round_id = start(player)["round_id"]
    response = player.post(f"/api/rounds/{round_id}/points", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] == code
    assert len(stored_points(database, round_id)) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates_are_refused(
    player: TestClient, database: Database, literal: str
) -> None:
    round_id = start(player)["round_id"]
    raw = f'{{"seq": 1, "points": [[{literal}, 5, 0]]}}'
    response = player.post(
        f"/api/rounds/{round_id}/points", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert len(stored_points(database, round_id)) == 0


def test_oversized_and_malformed_bodies(player: TestClient) -> None:
    round_id = start(player)["round_id"]
    huge = player.post(
        f"/api/rounds/{round_id}/points",
        content=b"{" + b" " * 200_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"
    broken = player.post(
        f"/api/rounds/{round_id}/points",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422


def test_unknown_rounds_and_missing_players(client: TestClient, player: TestClient) -> None:
    assert send(player, 999_999, 1, [[1, 1, 0]]).status_code == 404
    assert player.post("/api/rounds/abc/skip").status_code == 422
    player.cookies.clear()
    response = player.post("/api/rounds", json={})
    assert response.status_code == 401 and response.json()["error"]["code"] == "no_player"
    player.cookies.set("clickme_player", "1.forged-signature")
    assert player.get("/api/players/me").status_code == 401


def test_an_unknown_campaign_is_not_found(player: TestClient) -> None:
    response = player.post("/api/rounds", json={"campaign": "nope"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "campaign_not_found"
