"""``bench_reveal.py``'s simulated player: what it records of each answered reveal."""

import http.server
import json
import random
import threading
import time
from collections.abc import Iterator

import pytest

from benchmarks import bench_reveal

ANSWER_AFTER_S = 0.05


class _SlowReveals(http.server.BaseHTTPRequestHandler):
    """Answers any POST as a reveal still playing, after ``ANSWER_AFTER_S``."""

    def do_POST(self) -> None:  # the name http.server calls
        self.rfile.read(int(self.headers["content-length"]))
        time.sleep(ANSWER_AFTER_S)
        body = json.dumps({"state": "playing"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("server-timing", "store;dur=1.25, dnn;dur=8.50")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowReveals)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join()


def test_a_reveal_records_its_latency_timing_and_the_client_s_own_cpu_not_its_wait(
    port: int,
) -> None:
    player = bench_reveal.Player(port, random.Random(1))
    player.round = {"round_id": 7, "image": {"width": 640, "height": 480}}

    player.reveal()
    player.reveal()

    assert player.server_ms == [(1.25, 8.5), (1.25, 8.5)]
    assert all(latency >= ANSWER_AFTER_S * 1000 for latency in player.latencies_ms)
    # CPU, not the wall time of the wait for the answer
    assert len(player.client_cpu_ms) == 2
    assert all(0 < cpu < ANSWER_AFTER_S * 1000 / 2 for cpu in player.client_cpu_ms)
