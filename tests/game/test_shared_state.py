"""Two API processes on one database serve a round's batches in turn: each reveal equals the one
a single process renders from every stored point (the per-process caches are safe)."""

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.points import xy_of
from clickme.players.identity import PLAYER_COOKIE
from clickme.scoring.reveal import render_mask
from clickme.scoring.scorer import Scorer
from tests.app_fixtures import set_time_limit
from tests.game.test_routes import send, start, stored_points

# Which process takes each batch, in order: alternating, and runs of the same one.
TURNS = "ABAABBA"


@pytest.fixture
def two_processes(
    game_settings: Settings, shared_scorer: Scorer, database: Database
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps (each with its own caches) on one database, playing as the same player."""
    set_time_limit(database, 60_000)
    with (
        TestClient(create_app(game_settings, scorer=shared_scorer)) as first,
        TestClient(create_app(game_settings, scorer=shared_scorer)) as second,
    ):
        assert first.post("/api/players", json={"consent": True}).status_code == 201
        second.cookies.set(PLAYER_COOKIE, first.cookies[PLAYER_COOKIE])
        yield first, second


def full_render(client: TestClient, database: Database, round_id: int) -> np.ndarray:
    """The mask rendered at once from every point stored so far."""
    runtime = client.app.state.runtime
    facts = runtime.rounds.get(round_id)
    prepared = runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)
    return render_mask(xy_of(stored_points(database, round_id)), prepared, facts.rule)


def test_batches_served_in_turn_reveal_what_one_process_would(
    two_processes: tuple[TestClient, TestClient], database: Database
) -> None:
    processes = dict(zip("AB", two_processes, strict=True))
    round_id = start(processes["A"])["round_id"]
    for seq, turn in enumerate(TURNS, start=1):
        client = processes[turn]
        point = [12 + 25 * seq, 10 + 15 * seq, 40 * seq]
        reveal = send(client, round_id, seq, [point])
        assert reveal.status_code == 200, reveal.text
        assert reveal.json()["state"] == "playing"
        expected = full_render(client, database, round_id)
        assert reveal.json()["revealed_fraction"] == pytest.approx(float(expected.mean()), abs=1e-6)
    # Each process keeps the mask of the last batch it served; only that seq's successor may
    # grow it (seq 3, 5 and 7 above were rendered from the database instead).
    cached = {
        turn: client.app.state.runtime.masks.get(round_id) for turn, client in processes.items()
    }
    assert (cached["A"].seq, cached["B"].seq) == (7, 6)
    np.testing.assert_allclose(
        cached["A"].drawn.mask, full_render(processes["A"], database, round_id), atol=1e-6
    )
