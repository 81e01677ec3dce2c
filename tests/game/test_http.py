"""The game over real HTTP against `clickme serve`: what a player is told is already committed."""

import httpx
import sqlalchemy as sa

from tests.live_server import LiveServer

ATTEMPTS = 40


def test_a_round_and_its_batches_are_committed_before_the_answer(demo_server: LiveServer) -> None:
    with httpx.Client(base_url=demo_server.base_url) as client:
        for _ in range(ATTEMPTS // 5):
            client.cookies.clear()
            assert client.post("/api/players", json={"consent": True}).status_code == 201
            for _ in range(5):
                round_id = client.post("/api/rounds", json={}).json()["round_id"]
                # Straight away, from another connection: the round must exist, and so must a batch.
                with demo_server.engine.connect() as connection:
                    assert connection.execute(
                        sa.text("SELECT count(*) FROM rounds WHERE id = :id"), {"id": round_id}
                    ).scalar_one()
                reveal = client.post(
                    f"/api/rounds/{round_id}/points", json={"seq": 1, "points": [[3, 3, 0]]}
                )
                assert reveal.status_code == 200, reveal.text
                assert "store;dur=" in reveal.headers["server-timing"]
                with demo_server.engine.connect() as connection:
                    stored = connection.execute(
                        sa.text("SELECT count(*) FROM point_batches WHERE round_id = :id"),
                        {"id": round_id},
                    ).scalar_one()
                assert stored == 1
                client.post(f"/api/rounds/{round_id}/skip")
