"""Schemathesis from outside: every operation of the schema sent over real HTTP to a running
`clickme serve`, as a player, a researcher and an admin, each with the cookies a browser holds;
the same checks as the in-process run (tests/test_fuzz_api.py), with fewer examples
(`CLICKME_FUZZ_LIVE_EXAMPLES`, default 1: CI stays short)."""

import os
from collections.abc import Callable, Iterator

import httpx
import pytest
import schemathesis
from sqlalchemy import update

from clickme.accounts.models import StaffUser
from clickme.accounts.security import STAFF_COOKIE
from clickme.players.identity import PLAYER_COOKIE
from tests.accounts.staff import PASSWORD
from tests.live_server import LiveServer
from tests.test_fuzz_api import SCHEMA, cookie_header, fuzz

EXAMPLES = int(os.environ.get("CLICKME_FUZZ_LIVE_EXAMPLES", "1"))
# Identities sign in from addresses of their own: the fuzzed logins' failures (from 127.0.0.1)
# must not throttle them.
IDENTITY_ADDRESSES = {"player": "127.0.0.2", "researcher": "127.0.0.3", "admin": "127.0.0.4"}
Headers = Callable[[], dict[str, str]]


def http_client(base_url: str, address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=30.0)


def player_headers(server: LiveServer) -> Headers:
    with http_client(server.base_url, IDENTITY_ADDRESSES["player"]) as browser:
        created = browser.post("/api/players", json={"consent": True})
        assert created.status_code == 201, created.text
        token = created.cookies[PLAYER_COOKIE]
    return lambda: {"Cookie": cookie_header({PLAYER_COOKIE: token})}


def staff_headers(server: LiveServer, role: str) -> Headers:
    """A staff member of the role, restored and signed in again whenever a fuzzed request
    disabled them, changed their role or ended their session."""
    email = f"{role}@example.org"
    server.cli("admin", "create-user", email, "--role", role, "--password-stdin", stdin=PASSWORD)
    signed_in: dict[str, str] = {}

    def sign_in() -> None:
        with server.engine.begin() as connection:
            restore = update(StaffUser).where(StaffUser.email == email)
            connection.execute(restore.values(role=role, disabled=False))
        with http_client(server.base_url, IDENTITY_ADDRESSES[role]) as browser:
            response = browser.post("/api/staff/login", json={"email": email, "password": PASSWORD})
            assert response.status_code == 200, response.text
            signed_in.update(
                {
                    "Cookie": cookie_header({STAFF_COOKIE: response.cookies[STAFF_COOKIE]}),
                    "X-CSRF-Token": response.json()["csrf_token"],
                }
            )

    def headers() -> dict[str, str]:
        with http_client(server.base_url) as browser:
            me = browser.get("/api/staff/me", headers=signed_in) if signed_in else None
        if me is None or me.status_code != 200 or me.json()["role"] != role:
            sign_in()
        return dict(signed_in)

    return headers


@pytest.fixture(scope="module")
def fuzzing_client(demo_server: LiveServer) -> Iterator[httpx.Client]:
    with http_client(demo_server.base_url) as client:
        yield client


@pytest.mark.parametrize("role", ["player", "researcher", "admin"])
def test_no_operation_fails_or_breaks_its_schema_over_http(
    demo_server: LiveServer, fuzzing_client: httpx.Client, role: str
) -> None:
    identity = player_headers(demo_server) if role == "player" else staff_headers(demo_server, role)

    def over_http(case: schemathesis.Case) -> httpx.Response:
        case.cookies = {}
        kwargs = case.as_transport_kwargs(base_url=demo_server.base_url, headers=identity())
        body = {"json": kwargs["json"]} if "json" in kwargs else {"content": kwargs.get("data")}
        return fuzzing_client.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs["params"],
            headers=kwargs["headers"],
            **body,
        )

    requests, failures = fuzz(over_http, EXAMPLES)
    print(f"fuzzed {requests} requests over HTTP as {role}")
    assert not failures, "\n\n".join(failures)
    assert requests >= len(list(SCHEMA.get_all_operations()))
