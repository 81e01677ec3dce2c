"""The game's fast path: a well-formed batch is answered by the pipeline, a new round and a
start call by their work, without the routes, for a signed player; anything else goes on to the
route with its body intact, and errors read as the app's."""

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.requests import cookie_parser
from starlette.types import Receive, Scope, Send

from clickme.game.fast_path import (
    NEW_ROUND_ROUTE,
    REVEAL_ROUTE,
    START_ROUTE,
    GameFastPath,
    _player_cookie,
)
from clickme.game.schemas import RoundClock, RoundOut
from clickme.players.identity import PLAYER_COOKIE
from tests.game.test_routes import start

Passed = list[tuple[str, bytes]]


@pytest.fixture
def passed() -> Passed:
    """The (path, body) of each request the fast path passed on."""
    return []


@pytest.fixture
def fast(player: TestClient, passed: Passed) -> TestClient:
    """The fast path alone in front of a stand-in for the rest of the app (418), inside the
    real app's scope (its runtime and exception handlers), with the player's cookie."""

    async def rest_of_the_app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        passed.append((scope["path"], message["body"]))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast_path = GameFastPath(rest_of_the_app)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = player.app
        await fast_path(scope, receive, send)

    return TestClient(app, cookies=dict(player.cookies))


def points_body(seq: int) -> bytes:
    return orjson.dumps({"seq": seq, "points": [[10, 10, 0], [20, 12, 30]]})


def test_a_well_formed_batch_is_answered_without_the_route(
    player: TestClient, fast: TestClient, passed: Passed
) -> None:
    round_id = start(player)["round_id"]
    json = {"content-type": "application/json"}
    response = fast.post(f"/api/rounds/{round_id}/points", content=points_body(1), headers=json)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["seq"] == 1 and answer["state"] == "playing" and len(answer["guesses"]) == 5
    assert response.headers["server-timing"].startswith("store;dur=")
    assert passed == []
    repeat = fast.post(f"/api/rounds/{round_id}/points", content=points_body(1), headers=json)
    assert repeat.json()["duplicate"] and repeat.json()["guesses"] == answer["guesses"]


def new_round(player: TestClient) -> dict:
    response = player.post("/api/rounds", json={"viewport_width": 1280})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_signed_start_call_is_answered_without_the_route(
    player: TestClient, fast: TestClient, passed: Passed
) -> None:
    """The clock as the route answers it (``RoundClock``), started once: a second call reads
    the same start; its body, if any, is not read."""
    round_ = new_round(player)
    path = f"/api/rounds/{round_['round_id']}/start"
    response = fast.post(path, content=b"ignored")
    assert response.status_code == 200, response.text
    clock = RoundClock.model_validate_json(response.content)
    assert response.json() == clock.model_dump()
    assert (clock.round_id, clock.time_limit_ms) == (round_["round_id"], round_["time_limit_ms"])
    again = RoundClock.model_validate(fast.post(path).json())
    assert again.display_ms == clock.display_ms and again.elapsed_ms >= clock.elapsed_ms
    assert passed == []
    points = f"/api/rounds/{round_['round_id']}/points"
    json = {"content-type": "application/json"}
    assert fast.post(points, content=points_body(1), headers=json).json()["state"] == "playing"


def test_a_new_round_is_answered_without_the_route(fast: TestClient, passed: Passed) -> None:
    """201 with the round as the route's model has it (JSON mode), then playable."""
    json = {"content-type": "application/json"}
    response = fast.post("/api/rounds", content=b'{"viewport_width": 1280}', headers=json)
    assert response.status_code == 201, response.text
    round_ = RoundOut.model_validate_json(response.content)
    assert response.json() == round_.model_dump(mode="json")
    assert round_.campaign == "default" and round_.image.url.startswith("/")
    assert passed == []
    assert fast.post(f"/api/rounds/{round_.round_id}/start").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "signed"),
    [
        (b'{"viewport_width": 0}', "application/json", True),  # out of range
        (b"{not json", "application/json", True),
        (b"{}", "text/plain", True),
        (b"{}", "application/json", False),  # no cookie
    ],
    ids=["invalid", "malformed", "not-json", "no-cookie"],
)
def test_a_new_round_otherwise_goes_on_with_its_body(
    fast: TestClient, passed: Passed, body: bytes, content_type: str, signed: bool
) -> None:
    if not signed:
        fast.cookies.clear()
    response = fast.post("/api/rounds", content=body, headers={"content-type": content_type})
    assert response.status_code == 418
    assert passed == [("/api/rounds", body)]


def test_a_new_round_refused_reads_as_the_apps(player: TestClient, fast: TestClient) -> None:
    json = {"content-type": "application/json"}
    response = fast.post("/api/rounds", content=b'{"campaign": "nowhere"}', headers=json)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"
    assert NEW_ROUND_ROUTE.path in player.app.openapi()["paths"]  # the metrics template


def test_a_start_call_without_a_signed_cookie_goes_on(
    player: TestClient, fast: TestClient, passed: Passed
) -> None:
    path = f"/api/rounds/{new_round(player)['round_id']}/start"
    fast.cookies.clear()
    fast.cookies.set("clickme_player", "12.3.forged")
    assert fast.post(path, content=b"kept").status_code == 418
    assert passed == [(path, b"kept")]


def test_a_start_call_refused_reads_as_the_apps(player: TestClient, fast: TestClient) -> None:
    response = fast.post("/api/rounds/987654/start")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "round_not_found", "message": "no round 987654 for this player"}
    }
    assert START_ROUTE.path in player.app.openapi()["paths"]  # the metrics template


@pytest.mark.parametrize(
    ("body", "content_type", "signed"),
    [
        (b'{"seq": 0, "points": [[1, 1, 0]]}', "application/json", True),  # seq out of range
        (b"{not json", "application/json", True),
        (points_body(1), "text/plain", True),
        (points_body(1), "application/json", False),  # no cookie
    ],
    ids=["invalid", "malformed", "not-json", "no-cookie"],
)
def test_anything_else_goes_on_with_its_body(
    player: TestClient,
    fast: TestClient,
    passed: Passed,
    body: bytes,
    content_type: str,
    signed: bool,
) -> None:
    round_id = start(player)["round_id"]
    if not signed:
        fast.cookies.clear()
    path = f"/api/rounds/{round_id}/points"
    response = fast.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 418
    assert passed == [(path, body)]


def test_other_requests_are_not_read(fast: TestClient, passed: Passed) -> None:
    assert fast.post("/api/rounds/1/skip", content=b"x").status_code == 418
    assert fast.get("/api/rounds/1/points").status_code == 418
    assert fast.post("/api/rounds/99999999999/points", content=b"x").status_code == 418  # id range
    assert [path for path, _ in passed] == [
        "/api/rounds/1/skip",
        "/api/rounds/1/points",
        "/api/rounds/99999999999/points",
    ]


def test_errors_read_as_the_apps_and_the_route_template_is_kept(
    player: TestClient, fast: TestClient
) -> None:
    json = {"content-type": "application/json"}
    response = fast.post("/api/rounds/987654/points", content=points_body(1), headers=json)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "round_not_found", "message": "no round 987654 for this player"}
    }
    assert REVEAL_ROUTE.path in player.app.openapi()["paths"]  # the metrics template


@pytest.mark.parametrize(
    "header",
    [
        "clickme_player=12.3.abc",
        "theme=dark; clickme_player=12.3.abc; other=1",
        'clickme_player="12.3.abc"',
        "clickme_player=first; clickme_player=second",
        "other=1",
        "",
    ],
)
def test_the_player_cookie_reads_as_starlettes_and_is_kept(header: str) -> None:
    _player_cookie.cache_clear()
    expected = cookie_parser(header).get(PLAYER_COOKIE)
    for _ in range(2):
        assert _player_cookie(header.encode("latin-1")) == expected
    assert _player_cookie.cache_info().hits == 1
