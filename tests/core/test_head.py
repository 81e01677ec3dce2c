"""HEAD is answered wherever GET is: the same status and headers, no body."""

import pytest
from fastapi.testclient import TestClient


def assert_head_like_get(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code == 200, (path, head.status_code, got.status_code)
    assert head.content == b""
    for header in ("content-type", "content-length", "cache-control"):
        assert head.headers.get(header) == got.headers.get(header), (path, header)


def test_head_on_the_image_file_of_a_round(player: TestClient) -> None:
    image_url = player.post("/api/rounds", json={}).json()["image"]["url"]
    assert_head_like_get(player, image_url)


@pytest.mark.parametrize("path", ["/", "/admin", "/static/game.js", "/healthz", "/api/leaderboard"])
def test_head_on_pages_and_reads(client: TestClient, path: str) -> None:
    assert_head_like_get(client, path)


def test_head_where_get_is_not_allowed_stays_refused(player: TestClient) -> None:
    response = player.head("/api/rounds")  # POST only
    assert response.status_code == 405
