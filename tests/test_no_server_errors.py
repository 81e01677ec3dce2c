"""Nothing a player or a staff member sends produces a 500: a battery of malformed bodies against
the login, campaign, player and game routes (the upload route has its own hostile-file tests)."""

import itertools

import pytest
from fastapi.testclient import TestClient

from clickme.core.db import Database
from tests.accounts.staff import add_staff_user, staff_headers

VALID_CAMPAIGN = {"name": "Birds", "slug": "birds", "image_set_id": 1, "model_id": 1}
NASTY_VALUES = [
    None,
    "",
    "x" * 100_000,
    "\u0000\ud7ff\ufffd",
    -1,
    0,
    2**63,
    -(2**63) - 1,
    1e308,
    [],
    {},
    [1, 2, 3],
    {"$ne": 1},
    True,
    "1; DROP TABLE campaigns",
]
RAW_BODIES = [b"", b"{", b"null", b"[]", b'"text"', b"\xff\xfe", b'{"a": NaN}', b"{}" * 1000]


def mutations(valid: dict[str, object]) -> list[dict[str, object]]:
    """The valid body with each field in turn set to each nasty value, or dropped."""
    bodies: list[dict[str, object]] = []
    for key, value in itertools.product(valid, NASTY_VALUES):
        bodies.append({**valid, key: value})
    bodies.extend({k: v for k, v in valid.items() if k != key} for key in valid)
    bodies.append({**valid, "unexpected": 1})
    return bodies


def assert_no_server_error(client: TestClient, method: str, path: str, headers: dict) -> int:
    tried = 0
    for body in RAW_BODIES:
        response = client.request(
            method, path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code < 500, (method, path, body, response.text)
        tried += 1
    return tried


@pytest.fixture
def admin_headers(database: Database) -> dict[str, str]:
    add_staff_user(database, "admin@example.org", "admin")
    return staff_headers(database, "admin@example.org")


def test_login_survives_bad_input(client: TestClient) -> None:
    assert_no_server_error(client, "POST", "/api/staff/login", {})
    for body in mutations({"email": "a@b.org", "password": "correct horse battery"}):
        response = client.post("/api/staff/login", json=body)
        assert response.status_code < 500, (body, response.text)


def test_campaign_routes_survive_bad_input(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post("/api/admin/campaigns", json=VALID_CAMPAIGN, headers=admin_headers)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    routes = [
        ("POST", "/api/admin/campaigns", VALID_CAMPAIGN),
        ("PATCH", f"/api/admin/campaigns/{campaign_id}", {"time_limit_ms": 5000, "name": "B"}),
        ("POST", f"/api/admin/campaigns/{campaign_id}/state", {"state": "active"}),
    ]
    for method, path, valid in routes:
        assert_no_server_error(client, method, path, admin_headers)
        for body in mutations(valid):
            response = client.request(method, path, json=body, headers=admin_headers)
            assert response.status_code < 500, (method, path, body, response.text)
    for bad_id in ("0", "-1", "abc", str(2**63), "1.5"):
        response = client.get(f"/api/admin/campaigns/{bad_id}", headers=admin_headers)
        assert response.status_code < 500, (bad_id, response.text)


def test_player_and_game_routes_survive_bad_input(player: TestClient) -> None:
    round_id = player.post("/api/rounds", json={}).json()["round_id"]
    routes = [
        ("POST", "/api/players", {"consent": True}),
        ("PATCH", "/api/players/me", {"display_name": "Ada"}),
        ("POST", "/api/rounds", {"viewport_width": 800, "viewport_height": 600}),
        ("POST", f"/api/rounds/{round_id}/points", {"seq": 1, "points": [[1, 1, 0]]}),
    ]
    for method, path, valid in routes:
        assert_no_server_error(player, method, path, {})
        for body in mutations(valid):
            response = player.request(method, path, json=body)
            assert response.status_code < 500, (method, path, body, response.text)


@pytest.mark.parametrize("escaped", ["a\\u0000b", "bell\\u0007", "lone \\ud800 surrogate"])
def test_text_fields_refuse_control_characters_at_the_schema(
    player: TestClient, escaped: str
) -> None:
    response = player.patch(
        "/api/players/me",
        content=f'{{"display_name": "{escaped}"}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"  # not the database's refusal


def test_ids_out_of_range_are_refused_before_the_database(player: TestClient) -> None:
    response = player.get(f"/api/rounds/{2**63}")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
