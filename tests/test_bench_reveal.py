"""``bench_reveal.py``'s simulated player: what it records of each answered reveal."""

import http.server
import json
import math
import random
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.sync.server import ServerConnection, serve

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


@pytest.fixture
def strokes_server() -> Iterator[tuple[int, list[str]]]:
    """A strokes' socket of its own that answers each batch as a reveal still playing, after
    ``ANSWER_AFTER_S``: its port, and the cookie of each handshake."""
    cookies: list[str] = []

    def answer(connection: ServerConnection) -> None:
        cookies.append(connection.request.headers["cookie"] if connection.request else "")
        for message in connection:
            batch = json.loads(message)
            time.sleep(ANSWER_AFTER_S)
            body = {"state": "playing"}
            reply = {"round_id": batch["round_id"], "seq": batch["seq"], "status": 200}
            connection.send(json.dumps({**reply, "retry_after": None, "body": body}))

    with serve(answer, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.socket.getsockname()[1], cookies
        server.shutdown()


def test_a_reveal_over_the_socket_records_its_latency_and_no_server_timing(
    strokes_server: tuple[int, list[str]],
) -> None:
    port, cookies = strokes_server
    player = bench_reveal.Player(port, random.Random(1), transport="ws")
    player.cookie = "clickme_player=1.x"
    player.round = {"round_id": 7, "image": {"width": 640, "height": 480}}

    player.reveal()
    player.reveal()
    player.close()

    assert len(player.latencies_ms) == 2 and player.errors.total() == 0
    assert all(latency >= ANSWER_AFTER_S * 1000 for latency in player.latencies_ms)
    assert all(math.isnan(store) and math.isnan(dnn) for store, dnn in player.server_ms)
    assert cookies == ["clickme_player=1.x"]  # one socket for both, with the player's cookie


class _ClosesAfterEachAnswer(_SlowReveals):
    """Keeps the connection alive by its headers, then closes it (a keep-alive timeout)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # the name http.server calls
        super().do_POST()
        self.close_connection = True


def test_a_connection_closed_while_it_idled_is_opened_again() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ClosesAfterEachAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        player = bench_reveal.Player(server.server_address[1], random.Random(1))
        assert player.call("POST", "/api/rounds/7/start")[0] == 200
        time.sleep(0.05)  # the server has closed it
        assert player.call("POST", "/api/rounds/7/start")[0] == 200
    finally:
        server.shutdown()
        thread.join()
