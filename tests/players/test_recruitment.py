"""Recruitment: Prolific and MTurk ids stored with the player, returning participants recognised,
MTurk previews create nobody; the player's IP is kept only as a salted hash."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.errors import ClickmeError
from clickme.players import service
from clickme.players.identity import hash_ip
from clickme.players.models import Player
from clickme.players.recruitment import Recruitment, RecruitmentParams, parse_recruitment

PROLIFIC = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "st-1", "SESSION_ID": "se_1"}
MTURK = {"workerId": "A1B2C3D4E5", "assignmentId": "3XYZASSIGN", "hitId": "3HITHIT"}


def stored(database: Database, player_id: int) -> Player:
    with database.session() as session:
        return session.get_one(Player, player_id)


def player_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count(Player.id)))


def test_prolific_ids_are_stored_and_the_participant_recognised(
    client: TestClient, database: Database
) -> None:
    first = client.post("/api/players", json={"consent": True, **PROLIFIC})
    assert first.status_code == 201, first.text
    player = stored(database, first.json()["id"])
    with database.session() as session:
        assert service.recruitment_of(session.get_one(Player, player.id)) == Recruitment(
            "prolific", PROLIFIC["PROLIFIC_PID"], "st-1", "se_1"
        )

    client.cookies.clear()  # the same participant, another browser, a new session
    again = client.post("/api/players", json={**PROLIFIC, "consent": True, "SESSION_ID": "se_2"})
    assert again.status_code == 200 and again.json()["id"] == player.id
    assert "clickme_player=" in again.headers["set-cookie"]
    assert client.get("/api/players/me").json()["id"] == player.id
    assert stored(database, player.id).session_id == "se_2"
    assert player_count(database) == 1


def test_mturk_ids_are_stored_the_hit_as_study_and_the_assignment_as_session(
    client: TestClient, database: Database
) -> None:
    response = client.post("/api/players", json={"consent": True, **MTURK})
    assert response.status_code == 201
    player = stored(database, response.json()["id"])
    assert (player.source, player.external_id) == ("mturk", "A1B2C3D4E5")
    assert (player.study_id, player.session_id) == ("3HITHIT", "3XYZASSIGN")
    assert service.recruitment_of(player).source == "mturk"
    prolific = client.post("/api/players", json={"consent": True, "PROLIFIC_PID": "A1B2C3D4E5"})
    assert prolific.json()["id"] != player.id  # another source, another participant


def test_an_mturk_preview_creates_no_player(client: TestClient, database: Database) -> None:
    body = {"consent": False, "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "3HITHIT"}
    response = client.post("/api/players", json=body)
    assert response.status_code == 200 and response.json() == {"preview": True}
    assert "set-cookie" not in response.headers
    assert player_count(database) == 0


def test_a_player_who_came_on_their_own_has_no_recruitment(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    response = client.post("/api/players", json={"consent": True}, headers={"User-Agent": "UA/1"})
    player = stored(database, response.json()["id"])
    assert service.recruitment_of(player) is None
    assert player.user_agent == "UA/1"
    assert player.ip_hash == hash_ip(game_settings.resolved_secret_key(), "testclient")
    assert "testclient" not in player.ip_hash and len(player.ip_hash) == 64
    assert hash_ip("another secret", "testclient") != player.ip_hash


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"PROLIFIC_PID": ""}, "invalid_recruitment_id", "PROLIFIC_PID must be 1-64"),
        ({"PROLIFIC_PID": "x" * 65}, "invalid_recruitment_id", "PROLIFIC_PID"),
        ({"workerId": "A1 B2"}, "invalid_recruitment_id", "workerId"),
        ({"workerId": "W1", "hitId": "<script>"}, "invalid_recruitment_id", "hitId"),
        ({"PROLIFIC_PID": "P1", "workerId": "W1"}, "invalid_recruitment", "not both"),
        ({"STUDY_ID": "st-1"}, "invalid_recruitment", "PROLIFIC_PID is required"),
        ({"assignmentId": "3XYZ"}, "invalid_recruitment", "workerId is required"),
        ({"workerId": 12}, "invalid_request", "workerId"),
    ],
)
def test_bad_recruitment_ids_are_refused_clearly(
    client: TestClient, database: Database, body: dict, code: str, words: str
) -> None:
    response = client.post("/api/players", json={"consent": True, **body})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code and words in response.json()["error"]["message"]
    assert player_count(database) == 0


def test_parsing_needs_no_database() -> None:
    assert parse_recruitment(RecruitmentParams()) is None
    assert parse_recruitment(RecruitmentParams(worker_id="W-1", hit_id="H_1")) == Recruitment(
        "mturk", "W-1", "H_1", None
    )
    with pytest.raises(ClickmeError):
        parse_recruitment(RecruitmentParams(session_id="only-a-session"))
