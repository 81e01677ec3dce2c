"""Past saturation a reveal is refused at once with the documented 503, before anything is
stored; the same batch sent again once the scorer keeps up is stored and answered."""

import time

import pytest
from fastapi.testclient import TestClient

from clickme.core.db import Database
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
