"""The round over HTTP: the server picks, times, judges, scores; points stored once, in order."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.core.db import Database
from clickme.game import reveal
from clickme.game.models import PointBatch, Round
from clickme.game.points import unpack_points, xy_of
from clickme.scoring.reveal import compose, render_mask, row_sums
from tests.app_fixtures import age


def start(client: TestClient) -> dict:
    """A new round, its photo shown at once (its clock running), as the game does."""
    response = client.post("/api/rounds", json={"viewport_width": 1280, "viewport_height": 800})
    assert response.status_code == 201, response.text
    round_ = response.json()
    shown = client.post(f"/api/rounds/{round_['round_id']}/start")
    assert shown.status_code == 200, shown.text
    return round_


def grid_points(width: int, height: int, step: int, t: int = 10) -> list[list[float]]:
    return [
        [x, y, t] for y in range(step // 2, height, step) for x in range(step // 2, width, step)
    ]


def send(client: TestClient, round_id: int, seq: int, points: list, **extra: object):
    body = {"seq": seq, "points": points, "pointer_type": "mouse", **extra}
    return client.post(f"/api/rounds/{round_id}/points", json=body)


def stored_points(database: Database, round_id: int) -> np.ndarray:
    with database.session() as session:
        chunks = session.scalars(
            select(PointBatch.data).where(PointBatch.round_id == round_id).order_by(PointBatch.seq)
        ).all()
    return unpack_points(list(chunks))


def test_round_starts_with_an_image_the_class_and_the_rules(player: TestClient) -> None:
    round_ = start(player)
    assert round_["time_limit_ms"] == 7000 and round_["top_k"] == 5
    assert round_["image"]["url"].startswith(f"/api/images/{round_['image']['id']}/display/")
    assert round_["start_within_ms"] == 20_000
    assert round_["class_name"] in {"espresso", "tabby", "tripod", "moped", "missile"}
    assert round_["class_label"].startswith(round_["class_name"])  # "tabby, tabby cat"
    assert round_["brush"]["radius_px"] > 0
    image = player.get(round_["image"]["url"])
    assert image.status_code == 200 and len(image.content) > 1000


def test_player_never_gets_the_same_image_twice_but_as_a_repeat(player: TestClient) -> None:
    seen = set()
    for _ in range(5):
        round_ = start(player)
        seen.add(round_["image"]["id"])
        assert player.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200
    assert len(seen) == 5
    response = player.post("/api/rounds", json={})
    assert response.status_code == 201  # the demo plays its photos again (tests/game/test_repeats)
    assert response.json()["repeat"] is True and response.json()["image"]["id"] in seen


def test_least_played_image_goes_first(client: TestClient, game_settings) -> None:
    first_images = []
    for _ in range(5):
        client.cookies.clear()
        assert client.post("/api/players", json={"consent": True}).status_code == 201
        first_images.append(start(client)["image"]["id"])
    assert len(set(first_images)) == 5  # each new player got a not-yet-played image


def test_painting_the_object_wins_with_a_time_score(player: TestClient, database: Database) -> None:
    round_ = start(player)
    width, height = round_["image"]["width"], round_["image"]["height"]
    points = grid_points(width, height, step=30)
    response = send(player, round_["round_id"], 1, points)
    assert response.status_code == 200, response.text
    reveal = response.json()
    assert len(reveal["guesses"]) == 5
    assert reveal["state"] == "correct"
    assert 50 <= reveal["score"] <= 100  # answered well inside the 7 s
    assert reveal["revealed_fraction"] > 0.5
    with database.session() as session:
        stored = session.get(Round, round_["round_id"])
        assert stored.outcome == "correct" and stored.score == reveal["score"]
        assert stored.pointer_type == "mouse" and stored.viewport_width == 1280
    result = player.get(f"/api/rounds/{round_['round_id']}").json()
    assert result["outcome"] == "correct" and result["total_score"] == reveal["score"]


def test_a_small_reveal_is_not_enough_and_guesses_change(player: TestClient) -> None:
    round_ = start(player)
    first = send(player, round_["round_id"], 1, [[5, 5, 0]]).json()
    assert first["state"] == "playing" and first["score"] == 0
    assert first["revealed_fraction"] < 0.05
    width, height = round_["image"]["width"], round_["image"]["height"]
    second = send(player, round_["round_id"], 2, grid_points(width, height, 30, t=50)).json()
    assert second["guesses"] != first["guesses"]


def test_points_are_stored_in_order_and_a_repeat_is_stored_once(
    player: TestClient, database: Database
) -> None:
    round_id = start(player)["round_id"]
    batch1 = [[10.5, 20.25, 0], [11, 21, 16], [12, 22, 33]]
    batch2 = [[30, 40, 50], [31, 41, 66]]
    assert send(player, round_id, 1, batch1).json()["duplicate"] is False
    repeat = send(player, round_id, 1, batch1)
    assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
    assert send(player, round_id, 2, batch2).status_code == 200
    points = stored_points(database, round_id)
    assert points["x"].tolist() == [10.5, 11, 12, 30, 31]
    assert points["y"].tolist() == [20.25, 21, 22, 40, 41]
    assert points["t"].tolist() == [0, 16, 33, 50, 66]
    with database.session() as session:
        assert session.get(Round, round_id).n_points == 5


def test_sequence_conflicts_and_gaps_are_refused(player: TestClient, database: Database) -> None:
    round_id = start(player)["round_id"]
    assert send(player, round_id, 1, [[1, 1, 0]]).status_code == 200
    changed = send(player, round_id, 1, [[2, 2, 0]])
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "seq_conflict"
    gap = send(player, round_id, 3, [[2, 2, 5]])
    assert gap.status_code == 409 and gap.json()["error"]["code"] == "seq_out_of_order"
    assert len(stored_points(database, round_id)) == 1


def test_skip_ends_the_round_without_points(player: TestClient) -> None:
    round_id = start(player)["round_id"]
    result = player.post(f"/api/rounds/{round_id}/skip").json()
    assert result["outcome"] == "skip" and result["score"] == 0
    late = send(player, round_id, 1, [[1, 1, 0]])
    assert late.status_code == 409 and late.json()["error"]["code"] == "round_ended"
    again = player.post(f"/api/rounds/{round_id}/skip").json()
    assert again["outcome"] == "skip"


def test_the_server_clock_decides_the_timeout(player: TestClient, database: Database) -> None:
    round_ = start(player)
    round_id = round_["round_id"]
    early = player.post(f"/api/rounds/{round_id}/finish")
    assert early.status_code == 409 and early.json()["error"]["code"] == "round_running"
    age(player, database, round_id, round_["time_limit_ms"] / 1000 + 0.05, shown_too=True)
    result = player.post(f"/api/rounds/{round_id}/finish").json()
    assert result["outcome"] == "timeout" and result["score"] == 0


def test_a_batch_after_the_time_and_grace_is_refused(
    client: TestClient, player: TestClient, database: Database, game_settings
) -> None:
    round_ = start(player)
    round_id = round_["round_id"]
    past = (round_["time_limit_ms"] + game_settings.round_grace_ms) / 1000 + 0.1
    age(player, database, round_id, past, shown_too=True)
    late = send(player, round_id, 1, [[1, 1, 0]])
    assert late.status_code == 409 and late.json()["error"]["code"] == "round_ended"
    assert player.get(f"/api/rounds/{round_id}").json()["outcome"] == "timeout"
    assert len(stored_points(database, round_id)) == 0


def test_a_batch_inside_the_grace_is_kept_but_cannot_win(
    player: TestClient, database: Database
) -> None:
    round_ = start(player)
    # Just past the time limit: the batch arrives within the grace (500 ms) after it.
    age(
        player, database, round_["round_id"], round_["time_limit_ms"] / 1000 + 0.001, shown_too=True
    )
    width, height = round_["image"]["width"], round_["image"]["height"]
    sent = send(player, round_["round_id"], 1, grid_points(width, height, 30))
    assert sent.status_code == 200, sent.text  # seen failing once on a fresh clone, body unknown
    reveal = sent.json()
    assert reveal["state"] == "timeout" and reveal["score"] == 0
    assert len(stored_points(database, round_["round_id"])) > 0


def test_another_players_round_is_not_found(client: TestClient) -> None:
    client.post("/api/players", json={"consent": True})
    round_id = start(client)["round_id"]
    client.cookies.clear()
    client.post("/api/players", json={"consent": True})
    for response in (
        send(client, round_id, 1, [[1, 1, 0]]),
        client.post(f"/api/rounds/{round_id}/skip"),
        client.get(f"/api/rounds/{round_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "round_not_found"


def test_leaderboard_ranks_players_and_shows_mine(client: TestClient) -> None:
    scores = []
    for _ in range(3):
        client.cookies.clear()
        client.post("/api/players", json={"consent": True})
        round_ = start(client)
        width, height = round_["image"]["width"], round_["image"]["height"]
        scores.append(
            send(client, round_["round_id"], 1, grid_points(width, height, 30)).json()["score"]
        )
    board = client.get("/api/leaderboard").json()
    assert [entry["score"] for entry in board["top"]] == sorted(scores, reverse=True)
    ranked = sorted(scores, reverse=True)
    assert [entry["rank"] for entry in board["top"]] == [1 + ranked.index(s) for s in ranked]
    assert board["me"]["score"] == scores[-1]
    assert board["me"]["rank"] == 1 + sum(s > scores[-1] for s in scores)
    assert board["me"]["is_me"] and sum(entry["is_me"] for entry in board["top"]) == 1


def test_tied_players_share_a_rank_in_both_lists(client: TestClient) -> None:
    for _ in range(2):
        client.cookies.clear()
        client.post("/api/players", json={"consent": True})
        client.post(f"/api/rounds/{start(client)['round_id']}/skip")
    board = client.get("/api/leaderboard").json()
    assert [entry["rank"] for entry in board["top"]] == [1, 1]
    assert board["me"]["rank"] == 1 and board["me"]["score"] == 0


def test_incremental_masks_equal_a_full_render_with_or_without_the_cache(
    player: TestClient, database: Database
) -> None:
    round_ = start(player)
    round_id = round_["round_id"]
    runtime = player.app.state.runtime
    assert send(player, round_id, 1, [[10, 10, 0], [14, 12, 20]]).status_code == 200
    assert send(player, round_id, 2, [[60, 40, 40]]).status_code == 200
    runtime.masks.pop(round_id)  # as if another API process had taken batches 1 and 2
    third = send(player, round_id, 3, [[120, 90, 60]]).json()
    facts = runtime.rounds.get(round_id)
    prepared = runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)
    full = render_mask(xy_of(stored_points(database, round_id)), prepared, facts.rule)
    assert third["revealed_fraction"] == pytest.approx(float(full.mean()), abs=1e-6)
    assert send(player, round_id, 4, [[200, 150, 80]]).status_code == 200
    live = runtime.masks.get(round_id)
    full = render_mask(xy_of(stored_points(database, round_id)), prepared, facts.rule)
    assert live.seq == 4
    np.testing.assert_allclose(live.drawn.mask, full, atol=1e-6)


def test_a_round_s_first_batch_grows_from_nothing_revealed_not_a_whole_draw(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch's mask, row sums and image are what drawing them whole gives, made by
    growing the box its bubbles touch (a whole draw cost about 1 ms more)."""
    whole_draws = []
    monkeypatch.setattr(reveal, "_drawn", lambda *args: whole_draws.append(args))
    round_id = start(player)["round_id"]
    stroke = [[100, 80, 0], [104, 84, 20], [110, 86, 40]]
    assert send(player, round_id, 1, stroke).status_code == 200

    runtime = player.app.state.runtime
    live = runtime.masks.get(round_id)
    facts = runtime.rounds.get(round_id)
    prepared = runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)
    whole = render_mask(live.points, prepared, facts.rule)
    assert whole_draws == []
    np.testing.assert_array_equal(live.drawn.mask, whole)
    np.testing.assert_array_equal(live.drawn.sums, row_sums(whole))
    np.testing.assert_array_equal(live.drawn.image, compose(prepared, whole))


def test_a_round_s_prepared_photo_is_looked_up_once_not_at_each_batch(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept with the round's mask (its path and cache key cost about 60 µs a batch after a
    pause); looked up again only when the mask is drawn whole."""
    runtime = player.app.state.runtime
    looked_up = []
    real_get = runtime.images.get
    monkeypatch.setattr(
        runtime.images, "get", lambda *args: looked_up.append(args) or real_get(*args)
    )
    round_id = start(player)["round_id"]
    for seq in range(1, 5):
        assert send(player, round_id, seq, [[20 + 30 * seq, 40, 20 * seq]]).status_code == 200
    assert len(looked_up) == 1
    runtime.masks.pop(round_id)  # as if another API process had taken batch 4
    assert send(player, round_id, 5, [[200, 60, 100]]).status_code == 200
    assert len(looked_up) == 2
    assert runtime.masks.get(round_id).drawn.prepared is real_get(*looked_up[0])


def test_the_photo_prepared_for_a_round_is_kept_for_other_processes(
    player: TestClient, game_settings
) -> None:
    round_ = start(player)
    assert send(player, round_["round_id"], 1, [[10.0, 10.0, 10]]).status_code == 200
    assert len(list(game_settings.prepared_dir.glob("*.npz"))) == 1
