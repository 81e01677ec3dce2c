"""Staff sign-in over HTTP: cookie, rotation, logout, expiry, throttling, CSRF, accounts."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from clickme.accounts.models import LoginFailure, StaffSession, StaffUser
from clickme.accounts.security import STAFF_COOKIE
from clickme.accounts.service import (
    BACKOFF_AFTER_FAILURES,
    MAX_FAILURES_PER_EMAIL,
    MAX_FAILURES_PER_IP,
    email_backoff,
)
from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database, utcnow
from clickme.scoring.scorer import Scorer
from tests.accounts.staff import PASSWORD, add_staff_user, sign_in, staff_headers

ADMIN = "admin@example.org"
RESEARCHER = "researcher@example.org"


@pytest.fixture
def staff(client: TestClient, database: Database) -> TestClient:
    """The client, with an admin and a researcher account in the database."""
    add_staff_user(database, ADMIN, "admin")
    add_staff_user(database, RESEARCHER, "researcher")
    return client


def login(client: TestClient, email: str, password: str):
    return client.post("/api/staff/login", json={"email": email, "password": password})


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_login_sets_a_strict_http_only_cookie_and_me_answers(staff: TestClient) -> None:
    response = login(staff, "  Admin@Example.ORG ", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == ADMIN and body["role"] == "admin" and len(body["csrf_token"]) > 30
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{STAFF_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the demo is served over plain HTTP
    me = staff.get("/api/staff/me")
    assert me.status_code == 200
    assert me.json() == body


def test_only_the_token_hash_is_stored(staff: TestClient, database: Database) -> None:
    sign_in(staff, ADMIN)
    token = staff.cookies[STAFF_COOKIE]
    with database.session() as session:
        stored = session.scalars(select(StaffSession.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64


def test_wrong_password_and_unknown_email_answer_the_same(staff: TestClient) -> None:
    wrong = login(staff, ADMIN, "not the password at all")
    unknown = login(staff, "nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert error_code(wrong) == "bad_credentials"
    assert STAFF_COOKIE not in staff.cookies


def test_each_login_rotates_the_session(staff: TestClient) -> None:
    first_csrf = sign_in(staff, ADMIN)
    first_token = staff.cookies[STAFF_COOKIE]
    second_csrf = sign_in(staff, ADMIN)
    second_token = staff.cookies[STAFF_COOKIE]
    assert second_token != first_token and second_csrf != first_csrf
    staff.cookies.clear()
    old = staff.get("/api/staff/me", headers={"Cookie": f"{STAFF_COOKIE}={first_token}"})
    assert old.status_code == 401 and error_code(old) == "not_signed_in"
    new = staff.get("/api/staff/me", headers={"Cookie": f"{STAFF_COOKIE}={second_token}"})
    assert new.status_code == 200


def test_logout_ends_the_session(staff: TestClient) -> None:
    csrf = sign_in(staff, ADMIN)
    token = staff.cookies[STAFF_COOKIE]
    refused = staff.post("/api/staff/logout")
    assert refused.status_code == 403 and error_code(refused) == "csrf_failed"
    response = staff.post("/api/staff/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert staff.get("/api/staff/me").status_code == 401
    staff.cookies.clear()
    replayed = staff.get("/api/staff/me", headers={"Cookie": f"{STAFF_COOKIE}={token}"})
    assert replayed.status_code == 401


@pytest.mark.parametrize(
    "column, age",
    [
        (StaffSession.expires_at, timedelta(seconds=1)),
        (StaffSession.last_seen_at, timedelta(hours=3)),
    ],
)
def test_expired_or_idle_sessions_are_refused(
    staff: TestClient, database: Database, column, age: timedelta
) -> None:
    sign_in(staff, ADMIN)
    assert staff.get("/api/staff/me").status_code == 200
    with database.session() as session:
        session.execute(update(StaffSession).values({column: utcnow() - age}))
    response = staff.get("/api/staff/me")
    assert response.status_code == 401 and error_code(response) == "not_signed_in"


def test_repeated_failures_are_throttled_per_email(staff: TestClient, database: Database) -> None:
    for _ in range(MAX_FAILURES_PER_EMAIL):
        assert login(staff, ADMIN, "wrong password!").status_code == 401
    throttled = login(staff, ADMIN, PASSWORD)  # even the right password waits
    assert throttled.status_code == 429 and error_code(throttled) == "too_many_attempts"
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    assert login(staff, RESEARCHER, PASSWORD).status_code == 200  # other accounts are unaffected
    with database.session() as session:
        session.execute(update(LoginFailure).values(at=utcnow() - timedelta(minutes=16)))
    assert login(staff, ADMIN, PASSWORD).status_code == 200


def from_address(staff: TestClient, address: str) -> TestClient:
    """A browser on another address, on the same running app."""
    return TestClient(staff.app, client=(address, 40000))


def test_failures_from_one_address_do_not_lock_out_another(
    staff: TestClient, database: Database
) -> None:
    office, attacker, hotel = (
        from_address(staff, ip) for ip in ("10.0.0.1", "10.6.6.6", "10.9.9.9")
    )
    assert login(office, ADMIN, PASSWORD).status_code == 200  # the office becomes a known address
    for _ in range(MAX_FAILURES_PER_EMAIL):
        assert login(attacker, ADMIN, "wrong password!").status_code == 401
    assert login(attacker, ADMIN, PASSWORD).status_code == 429  # that address is locked out
    assert login(office, ADMIN, PASSWORD).status_code == 200  # the admin is not
    assert login(hotel, ADMIN, PASSWORD).status_code == 200  # nor a new address, under the backoff


def test_failures_from_many_addresses_slow_the_email_down_except_from_known_addresses(
    staff: TestClient, database: Database
) -> None:
    office = from_address(staff, "10.0.0.1")
    assert login(office, ADMIN, PASSWORD).status_code == 200
    for attempt in range(BACKOFF_AFTER_FAILURES + 3):
        with database.session() as session:  # each guess waits out the backoff
            for failure in session.scalars(select(LoginFailure)):
                failure.at -= timedelta(minutes=1)
        guesser = from_address(staff, f"10.1.0.{attempt}")
        assert login(guesser, ADMIN, "wrong password!").status_code == 401
    with database.session() as session:
        wait = email_backoff(session, ADMIN, utcnow())
    assert timedelta(0) < wait <= timedelta(seconds=8)  # 2**3 s after the last guess
    slowed = login(from_address(staff, "10.2.0.1"), ADMIN, PASSWORD)
    assert slowed.status_code == 429 and 1 <= int(slowed.headers["Retry-After"]) <= 8
    assert login(office, ADMIN, PASSWORD).status_code == 200  # the right password, known address


def test_a_success_clears_the_failures(staff: TestClient, database: Database) -> None:
    for _ in range(MAX_FAILURES_PER_EMAIL - 1):
        assert login(staff, ADMIN, "wrong password!").status_code == 401
    assert login(staff, ADMIN, PASSWORD).status_code == 200
    with database.session() as session:
        assert session.scalar(select(func.count(LoginFailure.id))) == 0
    assert login(staff, ADMIN, "wrong password!").status_code == 401
    assert login(staff, ADMIN, PASSWORD).status_code == 200


def test_repeated_failures_are_throttled_per_ip(staff: TestClient, database: Database) -> None:
    for attempt in range(MAX_FAILURES_PER_IP):
        assert login(staff, f"guess{attempt}@example.org", "wrong password!").status_code == 401
    throttled = login(staff, RESEARCHER, PASSWORD)
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    with database.session() as session:
        ip_hashes = set(session.scalars(select(LoginFailure.ip_hash)).all())
    assert len(ip_hashes) == 1 and "testclient" not in next(iter(ip_hashes))


def test_state_changes_need_the_csrf_token(staff: TestClient) -> None:
    csrf = sign_in(staff, ADMIN)
    body = {"email": "new@example.org", "password": "a long enough password", "role": "researcher"}
    missing = staff.post("/api/admin/users", json=body)
    wrong = staff.post("/api/admin/users", json=body, headers={"X-CSRF-Token": csrf + "x"})
    assert missing.status_code == wrong.status_code == 403
    assert error_code(missing) == error_code(wrong) == "csrf_failed"
    assert staff.get("/api/admin/users").status_code == 200  # reads need no token
    created = staff.post("/api/admin/users", json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text


def test_a_disabled_account_cannot_sign_in_and_loses_its_sessions(
    staff: TestClient, database: Database
) -> None:
    researcher = staff_headers(database, RESEARCHER)
    assert staff.get("/api/staff/me", headers=researcher).status_code == 200
    csrf = sign_in(staff, ADMIN)
    with database.session() as session:
        researcher_id = session.scalar(select(StaffUser.id).where(StaffUser.email == RESEARCHER))
    response = staff.patch(
        f"/api/admin/users/{researcher_id}", json={"disabled": True}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 200 and response.json()["disabled"] is True
    staff.cookies.clear()
    assert staff.get("/api/staff/me", headers=researcher).status_code == 401
    refused = login(staff, RESEARCHER, PASSWORD)
    assert refused.status_code == 403 and error_code(refused) == "account_disabled"
    assert login(staff, RESEARCHER, "wrong password!").status_code == 401  # says nothing more


def test_admins_manage_accounts(staff: TestClient, database: Database) -> None:
    headers = {"X-CSRF-Token": sign_in(staff, ADMIN)}
    body = {"email": " New@Example.org", "password": "a long enough password", "role": "researcher"}
    created = staff.post("/api/admin/users", json=body, headers=headers)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "new@example.org" and user["role"] == "researcher"
    assert "password" not in str(user) and "hash" not in str(user)
    again = staff.post("/api/admin/users", json=body, headers=headers)
    assert again.status_code == 409 and error_code(again) == "email_taken"
    for bad in ({**body, "password": "short"}, {**body, "role": "owner"}, {**body, "email": "x"}):
        assert staff.post("/api/admin/users", json=bad, headers=headers).status_code == 422
    promoted = staff.patch(
        f"/api/admin/users/{user['id']}", json={"role": "admin"}, headers=headers
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    listed = staff.get("/api/admin/users").json()
    assert [u["email"] for u in listed] == [ADMIN, RESEARCHER, "new@example.org"]
    assert staff.patch("/api/admin/users/999", json={}, headers=headers).status_code == 404
    huge = staff.patch(f"/api/admin/users/{2**40}", json={}, headers=headers)
    assert huge.status_code == 422


def test_the_last_active_admin_stays(staff: TestClient, database: Database) -> None:
    headers = {"X-CSRF-Token": sign_in(staff, ADMIN)}
    with database.session() as session:
        admin_id = session.scalar(select(StaffUser.id).where(StaffUser.email == ADMIN))
    for change in ({"disabled": True}, {"role": "researcher"}):
        response = staff.patch(f"/api/admin/users/{admin_id}", json=change, headers=headers)
        assert response.status_code == 409 and error_code(response) == "last_admin"
    assert staff.get("/api/staff/me").json()["role"] == "admin"


@pytest.fixture
def production_client(
    game_settings: Settings, database: Database, shared_scorer: Scorer, tmp_path: Path
) -> Iterator[TestClient]:
    settings = Settings(
        environment="production",
        secret_key="k3Jd9xP2mQ7vL5tR8wZ1nB4cF6hY0aE2gU9iO3sK",
        database_url=game_settings.database_url,
        data_dir=tmp_path / "production",
    )
    add_staff_user(database, ADMIN, "admin")
    app = create_app(settings, scorer=shared_scorer)
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


def test_the_cookie_is_secure_in_production(production_client: TestClient) -> None:
    response = login(production_client, ADMIN, PASSWORD)
    assert response.status_code == 200
    assert "Secure" in response.headers["set-cookie"]
