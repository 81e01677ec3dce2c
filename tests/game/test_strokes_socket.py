"""The strokes' WebSocket: each batch answered as its POST is, refusals read as the route's, the
socket kept open through them; the handshake only for a signed player from this site's page; a
real `clickme serve` carries it and closes a socket whose message is over the body limit."""

import threading
from collections.abc import Callable

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.https import POLICY_VIOLATION
from clickme.core.server import server_options
from clickme.game import strokes_socket
from clickme.game.strokes_socket import STROKES_PATH, same_origin
from clickme.players.identity import PLAYER_COOKIE
from clickme.players.models import Player
from tests.game.test_routes import send, start, stored_points
from tests.live_server import LiveServer

POINTS = [[10, 10, 0], [20, 12, 30]]


def message(round_id: object, seq: object, points: list = POINTS) -> str:
    return orjson.dumps({"round_id": round_id, "seq": seq, "points": points}).decode()


def test_a_batch_is_answered_as_its_post_and_stored_once(
    player: TestClient, database: Database
) -> None:
    round_id = start(player)["round_id"]
    with player.websocket_connect(STROKES_PATH) as socket:
        socket.send_text(message(round_id, 1))
        answer = orjson.loads(socket.receive_text())
        socket.send_text(message(round_id, 1))  # sent again (its answer lost): not stored twice
        repeat = orjson.loads(socket.receive_text())
    assert {k: answer[k] for k in ("round_id", "seq", "status", "retry_after")} == {
        "round_id": round_id,
        "seq": 1,
        "status": 200,
        "retry_after": None,
    }
    reveal = answer["body"]
    assert reveal["seq"] == 1 and not reveal["duplicate"] and len(reveal["guesses"]) == 5
    assert repeat["body"] == {**reveal, "duplicate": True}
    over_http = send(player, round_id, 1, POINTS)  # the route's answer to the same batch
    assert over_http.json() == {**reveal, "duplicate": True}
    assert stored_points(database, round_id)[["x", "y"]].tolist() == [(10, 10), (20, 12)]


def test_the_answers_follow_the_round_as_over_http(player: TestClient) -> None:
    """Two rounds' batches over one socket, the second sent over HTTP in between: the socket's
    next batch continues from it."""
    first, second = start(player)["round_id"], start(player)["round_id"]
    with player.websocket_connect(STROKES_PATH) as socket:
        socket.send_text(message(first, 1))
        assert orjson.loads(socket.receive_text())["round_id"] == first
        assert send(player, second, 1, POINTS).status_code == 200
        socket.send_text(message(second, 2, [[30, 30, 60]]))
        answer = orjson.loads(socket.receive_text())
    assert answer["round_id"] == second and answer["status"] == 200
    assert answer["body"]["seq"] == 2 and not answer["body"]["duplicate"]


def test_refusals_read_as_the_route_s_and_the_socket_stays_open(
    player: TestClient, client: TestClient
) -> None:
    round_id = start(player)["round_id"]
    other = TestClient(client.app)
    assert other.post("/api/players", json={"consent": True}).status_code == 201
    theirs = start(other)["round_id"]
    with player.websocket_connect(STROKES_PATH) as socket:

        def answer(text: str) -> dict:
            socket.send_text(text)
            return orjson.loads(socket.receive_text())

        invalid = answer(message(round_id, "x"))
        assert (invalid["round_id"], invalid["seq"], invalid["status"]) == (round_id, None, 422)
        assert invalid["body"]["error"]["code"] == "invalid_request"
        assert {"loc": ["seq"], "msg": invalid["body"]["error"]["details"][0]["msg"]} in (
            invalid["body"]["error"]["details"]
        )
        not_json = answer("{round")
        assert (not_json["round_id"], not_json["seq"], not_json["status"]) == (None, None, 422)
        assert answer(message(theirs, 1))["body"]["error"]["code"] == "round_not_found"
        gap = answer(message(round_id, 3))
        over_http = send(player, round_id, 3, POINTS)
        assert (gap["status"], gap["body"]) == (over_http.status_code, over_http.json())
        assert gap["body"]["error"]["code"] == "seq_out_of_order"
        assert answer(message(round_id, 1))["status"] == 200  # still open, still answering


def test_a_busy_dnn_is_the_documented_503_and_nothing_is_stored(
    player: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    round_id = start(player)["round_id"]
    runtime = player.app.state.runtime
    timeout_s = runtime.settings.scorer_timeout_ms / 1000
    monkeypatch.setattr(runtime.scorer, "expected_wait_s", lambda: timeout_s * 1.2)
    with player.websocket_connect(STROKES_PATH) as socket:
        socket.send_text(message(round_id, 1))
        refused = orjson.loads(socket.receive_text())
        assert refused["status"] == 503 and refused["body"]["error"]["code"] == "scorer_busy"
        assert len(stored_points(database, round_id)) == 0
        monkeypatch.setattr(runtime.scorer, "expected_wait_s", lambda: 0.0)
        socket.send_text(message(round_id, 1))
        assert orjson.loads(socket.receive_text())["body"]["duplicate"] is False


def test_an_error_the_app_does_not_handle_is_a_500_answer_not_a_closed_socket(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    round_id = start(player)["round_id"]
    real = strokes_socket.reveal.reveal

    async def broken(*args: object) -> object:
        raise RuntimeError("a bug")

    with player.websocket_connect(STROKES_PATH) as socket:
        monkeypatch.setattr(strokes_socket.reveal, "reveal", broken)
        socket.send_text(message(round_id, 1))
        failed = orjson.loads(socket.receive_text())
        assert failed["status"] == 500 and failed["body"]["error"]["code"] == "internal_error"
        monkeypatch.setattr(strokes_socket.reveal, "reveal", real)
        socket.send_text(message(round_id, 1))
        assert orjson.loads(socket.receive_text())["status"] == 200


def test_a_forgotten_player_s_socket_stores_nothing(player: TestClient, database: Database) -> None:
    round_id = start(player)["round_id"]
    with player.websocket_connect(STROKES_PATH) as socket:
        with database.session() as session, session.begin():
            session.execute(update(Player).values(token_epoch=Player.token_epoch + 1))
        socket.send_text(message(round_id, 1))
        refused = orjson.loads(socket.receive_text())
    assert refused["status"] == 401 and refused["body"]["error"]["code"] == "no_player"
    assert len(stored_points(database, round_id)) == 0


def test_each_answer_is_in_the_request_latency_histogram(player: TestClient) -> None:
    round_id = start(player)["round_id"]
    labels = {"method": "WS", "route": STROKES_PATH, "status": "200"}
    name = "clickme_http_request_duration_seconds_count"
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    with player.websocket_connect(STROKES_PATH) as socket:
        socket.send_text(message(round_id, 1))
        socket.receive_text()
    assert REGISTRY.get_sample_value(name, labels) == before + 1


def test_no_socket_without_a_signed_player(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(STROKES_PATH):
        pass
    assert refused.value.code == POLICY_VIOLATION  # a real server answers the handshake 403
    client.cookies.set(PLAYER_COOKIE, "1.0.forged")
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(STROKES_PATH):
        pass


def test_no_socket_for_another_site_s_page(player: TestClient) -> None:
    """A foreign page's script would carry the player's cookie (SameSite=None over HTTPS)."""
    foreign = {"origin": "https://evil.example", "host": "testserver"}
    with (
        pytest.raises(WebSocketDisconnect),
        player.websocket_connect(STROKES_PATH, headers=foreign),
    ):
        pass
    own = {"origin": "http://testserver", "host": "testserver"}
    with player.websocket_connect(STROKES_PATH, headers=own) as socket:
        socket.send_text(message(999_999, 1))
        assert orjson.loads(socket.receive_text())["status"] == 404


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (None, b"clickme.org", True),  # not a browser's handshake
        (b"https://clickme.org", b"clickme.org", True),
        (b"https://ClickMe.org", b"clickme.org", True),
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000", True),
        (b"http://127.0.0.1:8001", b"127.0.0.1:8000", False),
        (b"https://clickme.org.evil.example", b"clickme.org", False),
        (b"null", b"clickme.org", False),  # a sandboxed frame or a file
        (b"https://clickme.org", None, False),
    ],
)
def test_same_origin(origin: bytes | None, host: bytes | None, same: bool) -> None:
    headers = [(name, value) for name, value in ((b"origin", origin), (b"host", host)) if value]
    assert same_origin(headers) is same  # type: ignore[arg-type]


def test_the_server_limits_a_message_as_a_request_s_body(settings: Settings) -> None:
    options = server_options(settings)
    assert options["ws_max_size"] == settings.max_body_bytes
    assert options["ws_per_message_deflate"] is False


def _signed_round(live_server: LiveServer) -> tuple[str, int]:
    """A new player's cookie header and a round of theirs, its clock running."""
    with httpx.Client(base_url=live_server.base_url) as http:
        joined = http.post("/api/players", json={"consent": True})
        assert joined.status_code == 201, joined.text
        round_ = http.post("/api/rounds", json={"viewport_width": 1280}).json()
        assert http.post(f"/api/rounds/{round_['round_id']}/start").status_code == 200
        return f"{PLAYER_COOKIE}={http.cookies[PLAYER_COOKIE]}", round_["round_id"]


def test_a_real_server_carries_the_socket_and_refuses_an_oversized_message(
    live_server: LiveServer,
) -> None:
    cookie, round_id = _signed_round(live_server)
    url = "ws" + live_server.base_url.removeprefix("http") + STROKES_PATH
    with pytest.raises(InvalidStatus) as refused:
        connect(url)  # no cookie
    assert refused.value.response.status_code == 403
    with connect(url, additional_headers={"Cookie": cookie}) as socket:
        socket.send(message(round_id, 1))
        answer = orjson.loads(socket.recv())
        assert answer["status"] == 200 and len(answer["body"]["guesses"]) == 5
        oversized = message(round_id, 2, [[10.0, 10.0, 0]] * 200_000)  # over the 64 KiB default
        socket.send(oversized)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


def within(seconds: float, call: Callable[[], object]) -> object:
    """What the call returned or raised, on a daemon thread; fails after ``seconds``."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"no outcome within {seconds} s"
    return outcome[0]


def test_an_idle_socket_is_closed_and_a_new_one_answers(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a message for the idle timeout the server closes the socket (going away); the
    page opens another for its next batch."""
    round_id = start(player)["round_id"]
    monkeypatch.setattr(strokes_socket, "IDLE_TIMEOUT_S", 0.3)
    with player.websocket_connect(STROKES_PATH) as socket:
        socket.send_text(message(round_id, 1))
        assert orjson.loads(socket.receive_text())["status"] == 200
        closed = within(5.0, socket.receive_text)  # a socket left open would block: fail
    assert isinstance(closed, WebSocketDisconnect) and closed.code == strokes_socket.GOING_AWAY
    with player.websocket_connect(STROKES_PATH) as socket:
        socket.send_text(message(round_id, 2, [[30, 30, 60]]))
        assert orjson.loads(socket.receive_text())["body"]["seq"] == 2
