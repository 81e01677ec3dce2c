"""Past saturation a reveal is refused at once with the documented 503, before anything is
stored; the same batch sent again once the scorer keeps up is stored and answered. New rounds
are refused earlier, while a reveal would wait over the round start bound."""

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clickme.core.db import Database
from clickme.game.models import Round
from tests.game.test_routes import send, start, stored_points


def test_a_reveal_the_scorer_cannot_answer_in_time_is_refused_before_it_is_stored(
    player: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    round_id = start(player)["round_id"]
    scorer = player.app.state.runtime.scorer
    timeout_s = player.app.state.runtime.settings.scorer_timeout_ms / 1000
    # A little past the timeout: refused; a little within: let in.
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: timeout_s * 1.2)
    started = time.monotonic()
    refused = send(player, round_id, 1, [[10, 10, 0]])
    assert time.monotonic() - started < timeout_s
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "scorer_busy"
    assert len(stored_points(database, round_id)) == 0
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: timeout_s * 0.8)
    again = send(player, round_id, 1, [[10, 10, 0]])
    assert again.status_code == 200 and not again.json()["duplicate"]
    assert len(stored_points(database, round_id)) == 1


def test_no_new_round_while_a_reveal_would_wait_over_the_bound(
    player: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = player.app.state.runtime
    scorer = runtime.scorer
    bound_s = runtime.settings.round_start_max_wait_ms / 1000
    assert bound_s == 0.5  # the default
    playing = start(player)["round_id"]
    with database.session() as session:
        rounds_before = session.scalar(select(func.count()).select_from(Round))
    # A little past the bound: refused before a round is made; the round in play goes on.
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: bound_s * 1.2)
    refused = player.post("/api/rounds", json={"viewport_width": 1280})
    assert refused.status_code == 503
    assert refused.json()["error"] == {
        "code": "scorer_busy",
        "message": "the DNN partner is busy with other players: a new image shortly",
    }
    assert refused.headers["retry-after"] == "1"
    runtime.campaign_models.pop("default")  # a process that has not seen the campaign yet
    unknown = player.post("/api/rounds", json={"viewport_width": 1280})
    assert unknown.status_code == 503  # refused once the campaign's DNN is read
    assert runtime.campaign_models.get("default") == scorer.spec.name
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Round)) == rounds_before
    assert send(player, playing, 1, [[10, 10, 0]]).status_code == 200  # within the timeout
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: bound_s * 0.8)
    assert player.post("/api/rounds", json={"viewport_width": 1280}).status_code == 201
    runtime.settings = runtime.settings.model_copy(update={"round_start_max_wait_ms": 0})
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: 60.0)  # 0: never refused
    assert player.post("/api/rounds", json={"viewport_width": 1280}).status_code == 201


def test_a_crowd_is_refused_before_the_player_is_read(
    player: TestClient, client_without_cookie: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(player)  # this process now knows the demo campaign's DNN
    scorer = player.app.state.runtime.scorer
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: 60.0)
    refused = client_without_cookie.post("/api/rounds", json={"viewport_width": 1280})
    assert refused.status_code == 503  # not the 401 of a missing cookie: nothing was read
    monkeypatch.setattr(scorer, "expected_wait_s", lambda: 0.0)
    unknown = client_without_cookie.post("/api/rounds", json={"viewport_width": 1280})
    assert unknown.status_code == 401


@pytest.fixture
def client_without_cookie(player: TestClient) -> TestClient:
    """Another client of the same app, without the player's cookie."""
    return TestClient(player.app)
