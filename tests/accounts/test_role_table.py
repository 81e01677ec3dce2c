"""Every staff route, walked from the app itself, against the role table.

Each route under /api/admin and /api/staff is called with no cookie, a player's cookie, a
researcher's session and an admin's session. A route missing from ROLE_TABLE needs an admin, so
a route added later is covered without anyone remembering to list it.
"""

import re

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from clickme.core.db import Database
from tests.accounts.staff import add_staff_user, staff_headers

STAFF_PREFIXES = ("/api/admin", "/api/staff")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC, RESEARCHER, ADMIN = "public", "researcher", "admin"
ALLOWED = {PUBLIC: {"none", "player", RESEARCHER, ADMIN}, RESEARCHER: {RESEARCHER, ADMIN}}
ALLOWED[ADMIN] = {ADMIN}

# (method, path template) -> the least role allowed; anything not listed: admin only.
ROLE_TABLE: dict[tuple[str, str], str] = {
    ("POST", "/api/staff/login"): PUBLIC,
    ("GET", "/api/staff/me"): RESEARCHER,
    ("POST", "/api/staff/logout"): RESEARCHER,
    ("GET", "/api/admin/players"): RESEARCHER,
    ("GET", "/api/admin/players/{player_id}"): RESEARCHER,
    ("GET", "/api/admin/rounds/{round_id}/points"): RESEARCHER,
    ("GET", "/api/admin/campaigns"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}/stats"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}/reliability"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}/unwinnable"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}/images"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}/images/{image_id}/map.png"): RESEARCHER,
    ("GET", "/api/admin/campaigns/{campaign_id}/alignment"): RESEARCHER,
    ("GET", "/api/admin/alignment-jobs"): RESEARCHER,
    ("POST", "/api/admin/alignment-jobs"): RESEARCHER,
    ("GET", "/api/admin/alignment-jobs/{job_id}"): RESEARCHER,
    ("POST", "/api/admin/alignment-jobs/{job_id}/cancel"): RESEARCHER,
    ("GET", "/api/admin/image-sets"): RESEARCHER,
    ("GET", "/api/admin/image-sets/{image_set_id}/images"): RESEARCHER,
    ("GET", "/api/admin/models"): RESEARCHER,
    ("GET", "/api/admin/models/{name}/try"): RESEARCHER,
    ("GET", "/api/admin/exports"): RESEARCHER,
    ("POST", "/api/admin/exports"): RESEARCHER,
    ("POST", "/api/admin/exports/preview"): RESEARCHER,
    ("GET", "/api/admin/exports/{job_id}"): RESEARCHER,
    ("POST", "/api/admin/exports/{job_id}/cancel"): RESEARCHER,
    ("GET", "/api/admin/exports/{job_id}/download"): RESEARCHER,
    ("GET", "/api/admin/exports/{job_id}/files/{file_path:path}"): RESEARCHER,
}


def staff_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every staff route the app serves, included routers too."""
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(client.app.routes)
        if route.path and route.path.startswith(STAFF_PREFIXES)
        for method in (route.methods or set()) - {"HEAD", "OPTIONS"}
    )


def call(client: TestClient, method: str, template: str, headers: dict[str, str]):
    """The route with every path parameter set to 1 and, for writes, an empty JSON body."""
    client.cookies.clear()
    path = re.sub(r"\{[^}]+\}", "1", template)
    body = {} if method in WRITE_METHODS else None
    return client.request(method, path, headers=headers, json=body)


def identities(client: TestClient, database: Database, player_cookie: str) -> dict:
    """Headers for each kind of caller; staff sessions are fresh so a logout harms no other call."""
    return {
        "none": lambda: {},
        "player": lambda: {"Cookie": player_cookie},
        RESEARCHER: lambda: staff_headers(database, "researcher@example.org"),
        ADMIN: lambda: staff_headers(database, "admin@example.org"),
    }


def expected_refusal(identity: str) -> tuple[int, str]:
    return (403, "forbidden") if identity == RESEARCHER else (401, "not_signed_in")


def test_every_staff_route_follows_the_role_table(client: TestClient, database: Database) -> None:
    add_staff_user(database, "admin@example.org", "admin")
    add_staff_user(database, "researcher@example.org", "researcher")
    assert client.post("/api/players", json={"consent": True}).status_code == 201
    player_cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    callers = identities(client, database, player_cookie)
    routes = staff_routes(client)
    assert ("POST", "/api/admin/users") in routes and ("GET", "/api/staff/me") in routes

    mismatches = []
    for method, template in routes:
        least_role = ROLE_TABLE.get((method, template), ADMIN)
        for identity, headers in callers.items():
            response = call(client, method, template, headers())
            if identity in ALLOWED[least_role]:
                ok = response.status_code not in (401, 403)
            else:
                status, code = expected_refusal(identity)
                ok = response.status_code == status and response.json()["error"]["code"] == code
            if not ok:
                mismatches.append(f"{method} {template} as {identity}: {response.status_code}")
    assert not mismatches, "role table violated:\n" + "\n".join(mismatches)


def test_every_staff_write_needs_the_csrf_token(client: TestClient, database: Database) -> None:
    add_staff_user(database, "admin@example.org", "admin")
    writes = [
        (method, template)
        for method, template in staff_routes(client)
        if method in WRITE_METHODS and ROLE_TABLE.get((method, template)) != PUBLIC
    ]
    assert ("POST", "/api/admin/users") in writes
    for method, template in writes:
        headers = staff_headers(database, "admin@example.org")
        del headers["X-CSRF-Token"]
        response = call(client, method, template, headers)
        assert response.status_code == 403, f"{method} {template}: {response.status_code}"
        assert response.json()["error"]["code"] == "csrf_failed"


def test_the_role_table_lists_only_real_routes(client: TestClient) -> None:
    assert set(ROLE_TABLE) <= set(staff_routes(client))
