"""Security headers: a CSP on every response, framing only of the game page and only by MTurk,
no MIME sniffing, no referrer, HSTS in production only."""

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clickme.core.security_headers import SecurityHeaders, content_security_policy


@pytest.mark.parametrize("path", ["/", "/admin", "/api/leaderboard", "/static/game.js", "/nope"])
def test_every_response_carries_the_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers  # the demo runs on plain HTTP


def test_only_the_game_page_may_be_framed_and_only_by_mturk(client: TestClient) -> None:
    game = client.get("/")
    assert "frame-ancestors 'self' https://www.mturk.com" in game.headers["content-security-policy"]
    assert "x-frame-options" not in game.headers
    console = client.get("/admin")
    assert "frame-ancestors 'none'" in console.headers["content-security-policy"]
    assert console.headers["x-frame-options"] == "DENY"


def test_production_pins_https() -> None:
    async def ok(_request: Request) -> Response:
        return Response()

    app = Starlette(routes=[Route("/", ok)])
    app.add_middleware(SecurityHeaders, production=True, game_frame_ancestors="")
    with TestClient(app) as production:
        response = production.get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert content_security_policy("/x", "https://a.example").endswith("frame-ancestors 'none'")


def test_the_headers_replace_any_the_app_set() -> None:
    async def framed(_request: Request) -> Response:
        headers = {"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "default-src *"}
        return Response(headers={**headers, "X-Other": "kept"})

    app = Starlette(routes=[Route("/page", framed)])
    app.add_middleware(SecurityHeaders, production=False, game_frame_ancestors="")
    with TestClient(app) as client:
        response = client.get("/page")
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    policy = content_security_policy("/page", "")
    assert response.headers.get_list("content-security-policy") == [policy]
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    assert response.headers["x-other"] == "kept"


def test_static_files_cannot_be_read_outside_their_folder(client: TestClient) -> None:
    for path in (
        "/static/../pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static//etc/passwd",
        "/static/admin/../../README.md",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
