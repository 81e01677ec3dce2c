"""Schemathesis over every operation of the app's own OpenAPI schema, as a player, a researcher
and an admin: no response is a server error and every response matches what the schema declares.

The run is bounded and derandomized (the same cases every time); a longer one is
`CLICKME_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/test_fuzz_api.py -s` (see README's Tests).
Nothing is excluded: staff sessions are opened afresh for every case (a fuzzed logout ends only
its own) and the fuzzing account is restored before each case (a fuzzed PATCH may disable it).
"""

import os
from collections.abc import Callable
from http.cookies import SimpleCookie

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from clickme.accounts.models import StaffUser
from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.players.identity import PLAYER_COOKIE
from tests.accounts.staff import add_staff_user, staff_headers

EXAMPLES = int(os.environ.get("CLICKME_FUZZ_EXAMPLES", "4"))
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
Identity = Callable[[], dict[str, str]]


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def player_identity(client: TestClient) -> Identity:
    """A player who accepted consent: the same cookie for every case."""
    response = client.post("/api/players", json={"consent": True})
    assert response.status_code == 201, response.text
    token = SimpleCookie(response.headers["set-cookie"])[PLAYER_COOKIE].value
    client.cookies.clear()
    return lambda: {"Cookie": cookie_header({PLAYER_COOKIE: token})}


def staff_identity(database: Database, role: str) -> Identity:
    """A staff member of the role: restored and signed in afresh before every case."""
    email = f"{role}@example.org"
    add_staff_user(database, email, role)

    def headers() -> dict[str, str]:
        with database.session() as session:
            restore = update(StaffUser).where(StaffUser.email == email)
            session.execute(restore.values(role=role, disabled=False))
        return staff_headers(database, email)

    return headers


def send(client: TestClient, case: schemathesis.Case, identity: dict[str, str]):
    """The case through the app's own test client, with the identity's cookie and headers only."""
    case.cookies = {}
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=identity)
    body = {"json": kwargs["json"]} if "json" in kwargs else {"content": kwargs.get("data")}
    client.cookies.clear()
    return client.request(
        kwargs["method"], kwargs["url"], params=kwargs["params"], headers=kwargs["headers"], **body
    )


def modes(operation: schemathesis.APIOperation) -> list[schemathesis.GenerationMode]:
    """Negative cases too where there is something besides cookies to make invalid."""
    has_input = operation.path_parameters or operation.query or operation.body
    return list(MODES) if has_input else [schemathesis.GenerationMode.POSITIVE]


Sender = Callable[[schemathesis.Case], object]


def fuzz(sender: Sender, examples: int = EXAMPLES) -> tuple[int, list[str]]:
    """Every operation in each generation mode, each case sent by `sender` (the app's test
    client, or a live server): the number of requests made and the failures (one per operation
    and mode, so one broken route hides no other)."""
    case_settings = settings(FUZZ_SETTINGS, max_examples=examples)
    requests = 0
    failures: list[str] = []
    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        # The identity's cookies replace the generated ones: fixed here so none is negated.
        cookies = {parameter.name: "identity" for parameter in operation.cookies}
        for mode in modes(operation):

            @case_settings
            @given(case=operation.as_strategy(mode, cookies=cookies))
            def check(case: schemathesis.Case) -> None:
                nonlocal requests
                response = sender(case)
                requests += 1
                case.validate_response(response, checks=CHECKS)

            try:
                check()
            except (Exception, FailureGroup) as failure:
                failures.append(f"{operation.label} ({mode}): {failure}")
    return requests, failures


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a numeric overflow in a route is a bug
@pytest.mark.parametrize("role", ["player", "researcher", "admin"])
def test_no_operation_fails_or_breaks_its_schema(
    client: TestClient, database: Database, role: str
) -> None:
    identity = player_identity(client) if role == "player" else staff_identity(database, role)
    requests, failures = fuzz(lambda case: send(client, case, identity()))
    print(f"fuzzed {requests} requests as {role}")
    assert not failures, "\n\n".join(failures)
    assert requests >= len(list(SCHEMA.get_all_operations()))


def test_every_error_status_is_declared_with_the_one_error_body() -> None:
    for result in SCHEMA.get_all_operations():
        responses = result.ok().definition.raw["responses"]
        for status in ("401", "404", "422"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }


def test_an_unparsable_body_is_a_bad_request_in_the_error_shape(player: TestClient) -> None:
    response = player.patch(
        "/api/players/me", content=b"\xff", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
