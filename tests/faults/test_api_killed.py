"""A `clickme serve` process killed (SIGKILL) while a player's batch is in flight; a new process
is started on the same SQLite database and the player repeats the batch there.

What the player sees: the in-flight batch gets no answer at all (the connection drops);
the page (frontend/sender.js) repeats it with the same seq against the new process, which
acknowledges it as a duplicate: the kill came after its commit, and a batch is acknowledged only
after its commit, so what the killed process committed is neither lost nor stored again; the
round goes on. What the admin sees: the process is gone (/healthz unreachable) until the new
one is up and ready (/readyz 200). Nothing acknowledged is lost, nothing is stored twice.
"""

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.player import (
    Batch,
    Player,
    assert_stored_exactly_once,
    lengthen_rounds,
    stored_batches,
)
from tests.live_server import prepared_env, serving, start_server


def committed(database_url: str, batch: Batch) -> bool:
    return (batch.round_id, batch.seq) in {(r, s) for r, s, _ in stored_batches(database_url)}


def kill_once_committed(server: subprocess.Popen[bytes], database_url: str, batch: Batch) -> None:
    """SIGKILL as soon as the batch's commit shows, while the process is still classifying
    what it reveals (so the player never hears of the batch)."""
    deadline = time.monotonic() + 30
    while not committed(database_url, batch):
        assert time.monotonic() < deadline, "the in-flight batch was never stored"
        time.sleep(0.001)
    server.send_signal(signal.SIGKILL)


def test_an_api_process_killed_mid_request_loses_no_acknowledged_batch(
    models_cache_dir: Path, tmp_path: Path
) -> None:
    # One scoring thread: the reveal's forward pass is slow enough to be killed in.
    env = prepared_env(tmp_path, models_cache_dir, ["import-demo"], CLICKME_SCORER_THREADS="1")
    database_url = f"sqlite:///{tmp_path / 'data' / 'clickme.db'}"
    server, base_url = start_server(env, tmp_path / "first.log", "demo")
    try:
        lengthen_rounds(database_url)
        player = Player.join(base_url)
        player.play(3)
        in_flight = player.next_batch()
        answers: list[httpx.Response | None] = []
        sending = threading.Thread(target=lambda: answers.append(player.send(in_flight)))
        sending.start()
        kill_once_committed(server, database_url, in_flight)
        sending.join(timeout=60)
    finally:
        server.kill()
        server.wait()
    assert answers == [None], "the killed process answered the in-flight batch"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/healthz", timeout=5)

    with serving(env, tmp_path / "second.log", "demo") as second_url:
        assert httpx.get(f"{second_url}/readyz", timeout=30).status_code == 200
        player.http.base_url = httpx.URL(second_url)
        reveal = player.send_until_acknowledged(in_flight)
        assert reveal["duplicate"]  # stored before the kill: acknowledged, not stored again
        player.play(3)

    assert len(player.acknowledged) == 7
    assert_stored_exactly_once(database_url, player)
