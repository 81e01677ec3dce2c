"""A Redis restart under a running game: clear 503s while it is down (rate limits fail closed,
the leaderboard cannot be read), rounds end all the same, and everything comes back with it
(the leaderboard rebuilt from the database, the round that ended meanwhile included)."""

from pathlib import Path

from fastapi.testclient import TestClient

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.game.leaderboard import leaderboard
from clickme.scoring.scorer import Scorer
from tests.game.test_routes import start
from tests.live_server import free_port
from tests.redis_server import private_redis


def assert_store_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable"
    assert response.headers["Retry-After"] == "5"


def sql_leaderboard(client: TestClient, player_id: int) -> dict:
    with client.app.state.runtime.database.session() as session:
        return leaderboard(session, player_id, 10).model_dump()


def test_a_redis_restart_gives_clear_errors_then_the_game_recovers(
    game_settings: Settings, shared_scorer: Scorer, tmp_path: Path
) -> None:
    port = free_port()
    settings = game_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    redis_log = tmp_path / "redis.log"
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        with private_redis(port, redis_log):
            player_id = client.post("/api/players", json={"consent": True}).json()["id"]
            first = start(client)["round_id"]
            assert client.post(f"/api/rounds/{first}/skip").status_code == 200
            assert client.get("/api/leaderboard").json() == sql_leaderboard(client, player_id)
            second = start(client)["round_id"]

        assert_store_unavailable(client.post("/api/rounds", json={}))
        batch = {"seq": 1, "points": [[10, 10, 0]]}
        assert_store_unavailable(client.post(f"/api/rounds/{second}/points", json=batch))
        assert_store_unavailable(client.get("/api/leaderboard"))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("failed")
        skipped = client.post(f"/api/rounds/{second}/skip")  # no Redis on this path: it ends
        assert skipped.status_code == 200 and skipped.json()["outcome"] == "skip"

        with private_redis(port, redis_log):  # back, and empty
            board = client.get("/api/leaderboard").json()
            assert board == sql_leaderboard(client, player_id)
            assert board["me"]["rounds"] == 2
            assert client.get("/readyz").status_code == 200
            start(client)
