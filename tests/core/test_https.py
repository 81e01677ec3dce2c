"""Production is reached over HTTPS: a plain-HTTP request by a host name is explained (or, when a
proxy says the original request was plain HTTP, redirected), never handed to a game that cannot
keep its player; local addresses and the operations routes are exempt; the demo is untouched."""

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from clickme.core.https import POLICY_VIOLATION, HttpsOnly, host_name, is_local_host


async def scheme(request: Request) -> Response:
    return PlainTextResponse(request.url.scheme)


async def socket_scheme(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.url.scheme)
    await websocket.close()


def guarded(production: bool = True) -> TestClient:
    routes: list[Route | WebSocketRoute] = [
        Route(path, scheme) for path in ("/", "/api/leaderboard", "/healthz", "/metrics")
    ]
    routes.append(WebSocketRoute("/api/strokes", socket_scheme))
    app = Starlette(routes=routes)
    app.add_middleware(HttpsOnly, production=production)
    return TestClient(app, follow_redirects=False)


def test_plain_http_by_host_name_gets_the_explanation_page() -> None:
    response = guarded().get("http://clickme.test/?campaign=x")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This server must be reached over HTTPS" in response.text
    assert 'href="https://clickme.test/"' in response.text
    assert "CLICKME_FORWARDED_ALLOW_IPS" not in response.text


def test_plain_http_api_calls_get_a_json_error() -> None:
    response = guarded().post("http://clickme.test:8000/api/leaderboard")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "https_required"


def test_a_plain_websocket_handshake_by_host_name_is_refused() -> None:
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        guarded().websocket_connect("ws://clickme.test/api/strokes"),
    ):
        pass
    assert refused.value.code == POLICY_VIOLATION  # uvicorn answers the handshake 403
    for url in ("wss://clickme.test/api/strokes", "ws://localhost:8000/api/strokes"):
        with guarded().websocket_connect(url) as socket:
            assert socket.receive_text() in {"ws", "wss"}
    with guarded(production=False).websocket_connect("ws://clickme.test/api/strokes") as socket:
        assert socket.receive_text() == "ws"


def test_https_local_hosts_operations_routes_and_the_demo_pass() -> None:
    client = guarded()
    for url in (
        "https://clickme.test/",
        "http://localhost:8000/",
        "http://127.0.0.1:8000/api/leaderboard",
        "http://[::1]:8000/",
        "http://game.localhost/",
        "http://clickme.test/healthz",
        "http://api:8000/metrics",
    ):
        assert client.get(url).status_code == 200, url
    assert guarded(production=False).get("http://clickme.test/").status_code == 200


def test_a_proxy_saying_plain_http_gets_a_redirect_to_https() -> None:
    response = guarded().get(
        "http://clickme.test:80/?campaign=x", headers={"X-Forwarded-Proto": "http"}
    )
    assert response.status_code == 308
    assert response.headers["location"] == "https://clickme.test/?campaign=x"


def test_an_untrusted_proxy_saying_https_is_told_how_to_be_trusted() -> None:
    """It would loop if redirected: the page names the setting instead."""
    response = guarded().get("http://clickme.test/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 403
    assert "CLICKME_FORWARDED_ALLOW_IPS" in response.text


@pytest.mark.parametrize(
    ("header", "host", "local"),
    [
        ("localhost:8000", "localhost", True),
        ("127.0.0.5", "127.0.0.5", True),
        ("[::1]:8443", "::1", True),
        ("clickme.test:443", "clickme.test", False),
        ("10.0.0.1", "10.0.0.1", False),
        ("", "", False),
    ],
)
def test_host_names_and_local_hosts(header: str, host: str, local: bool) -> None:
    assert host_name(header) == host
    assert is_local_host(host) is local
