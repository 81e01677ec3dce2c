"""Nothing a player or a staff member sends produces a 500: a battery of malformed bodies against
the login, campaign, player and game routes (the upload route has its own hostile-file tests)."""

import itertools
import re
import urllib.parse

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from clickme.accounts.security import STAFF_COOKIE
from clickme.core.db import Database
from clickme.players.identity import PLAYER_COOKIE
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


# Non-ASCII digits ('²' passes str.isdigit(), then int() fails), other Unicode, and raw bytes:
# latin-1 bytes reach the app as those characters, UTF-8 ones as their latin-1 reading.
UNICODE_TEXTS = ["\xb2", "\xb3\xb9", "\u0661\u0662", "\U0001d7d9", "\u00bd", "\u202e1", "\ufeff1"]
COOKIE_VALUES = [
    *(f"{text}.x".encode() for text in UNICODE_TEXTS),
    *(f"{text}.x".encode("latin-1") for text in ("\xb2", "\xb3", "\xb9")),
    b"1.\xb2\xb2",
    b"\xff\xfe",
]
PATH_IDS = [*UNICODE_TEXTS, "1\xb2", "%C2%B2", "\u0967"]
PLACEHOLDER = re.compile(r"{(\w+)(?::path)?}")


def api_requests(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every API operation, its path parameters left as templates."""
    operations = [
        (method.upper(), path)
        for path, methods in client.app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in methods
    ]
    assert len(operations) > 30
    return operations


def assert_json_and_no_server_error(response: httpx.Response, what: object) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json", (what, response.text)
        assert response.json()["error"]["code"], what


WIRE_PREFIX = b"x-wire-"


def wire_headers(app: ASGIApp) -> ASGIApp:
    """The app given headers as raw bytes off the wire: `X-Wire-<name>: <hex>` arrives as
    `<name>` with those bytes (the test client would hand the app their UTF-8 encoding)."""

    async def with_raw_headers(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [
                (name.removeprefix(WIRE_PREFIX), bytes.fromhex(value.decode()))
                if name.startswith(WIRE_PREFIX)
                else (name, value)
                for name, value in scope["headers"]
            ]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return with_raw_headers


@pytest.mark.parametrize("cookie", [PLAYER_COOKIE, STAFF_COOKIE])
def test_every_route_survives_unicode_in_cookies(client: TestClient, cookie: str) -> None:
    wire = TestClient(wire_headers(client.app))  # the app already started by `client`
    for (method, template), value in itertools.product(api_requests(client), COOKIE_VALUES):
        path = PLACEHOLDER.sub("1", template)
        headers = {
            "x-wire-cookie": (cookie.encode() + b"=" + value).hex(),
            "x-wire-x-csrf-token": value.hex(),
        }
        response = wire.request(method, path, headers=headers)
        assert_json_and_no_server_error(response, (method, path, cookie, value))


def test_every_path_id_survives_unicode(player: TestClient) -> None:
    for (method, template), value in itertools.product(api_requests(player), PATH_IDS):
        if not PLACEHOLDER.search(template):
            continue
        path = PLACEHOLDER.sub(urllib.parse.quote(value, safe="%"), template)
        response = player.request(method, path)
        assert_json_and_no_server_error(response, (method, path))
