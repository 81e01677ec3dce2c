"""PostgreSQL restarted under a real `clickme serve` while a player paints (a private cluster,
crashed with `pg_ctl stop -m immediate`, then started again).

What the player sees: while the database is down, each batch is answered at once with a 503
``database_unavailable`` (Retry-After: 5); the game page keeps the batch and repeats it with
the same seq (frontend/sender.js repeats any 5xx or network failure, backing off), so the
reveal just waits; once the database is back, the batch is acknowledged and the round goes on.
What the admin sees: /readyz is 503 with ``checks.database`` "failed: ...", and the console's
calls (here /api/staff/me) get the same 503 ``database_unavailable``; both recover with the
database. Nothing acknowledged is lost, nothing is stored twice: a batch is acknowledged only
after its commit.
"""

from pathlib import Path

import httpx

from clickme.core.db import Database
from tests.accounts.staff import add_staff_user, staff_headers
from tests.faults.player import (
    Player,
    assert_stored_exactly_once,
    assert_unavailable,
    lengthen_rounds,
)
from tests.faults.private_postgres import private_postgres
from tests.live_server import prepared_env, serving

ADMIN = "admin@example.org"


def staff_headers_on(database_url: str) -> dict[str, str]:
    database = Database(database_url)
    try:
        add_staff_user(database, ADMIN, "admin")
        return staff_headers(database, ADMIN)
    finally:
        database.dispose()


def test_a_postgres_restart_loses_no_acknowledged_batch(
    models_cache_dir: Path, tmp_path: Path
) -> None:
    with private_postgres() as postgres:
        env = prepared_env(
            tmp_path, models_cache_dir, ["import-demo"], CLICKME_DATABASE_URL=postgres.url
        )
        with serving(env, tmp_path / "server.log", "demo") as base_url:
            lengthen_rounds(postgres.url)
            admin = staff_headers_on(postgres.url)
            player = Player.join(base_url)
            player.play(3)

            postgres.crash()
            in_flight = player.next_batch()
            assert_unavailable(player.send(in_flight))
            assert_unavailable(player.send(in_flight))  # the page retries: the same answer
            ready = httpx.get(f"{base_url}/readyz", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("failed")
            assert_unavailable(httpx.get(f"{base_url}/api/staff/me", headers=admin, timeout=30))

            postgres.start()
            reveal = player.send_until_acknowledged(in_flight)
            assert not reveal["duplicate"]  # refused while down: stored only now
            player.play(3)
            assert httpx.get(f"{base_url}/readyz", timeout=30).status_code == 200
            me = httpx.get(f"{base_url}/api/staff/me", headers=admin, timeout=30)
            assert me.status_code == 200, me.text

        assert len(player.acknowledged) == 7 and player.duplicates == 0
        assert_stored_exactly_once(postgres.url, player)
