"""Helpers for tests that need staff accounts: users, sessions and signed-in headers."""

from functools import cache

from fastapi.testclient import TestClient

from clickme.accounts import service
from clickme.accounts.models import StaffUser
from clickme.accounts.security import STAFF_COOKIE, hash_password
from clickme.core.db import Database

PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    """PASSWORD hashed once per test session (Argon2 is slow on purpose)."""
    return hash_password(PASSWORD)


def add_staff_user(database: Database, email: str, role: str, disabled: bool = False) -> int:
    with database.session() as session:
        user = StaffUser(email=email, password_hash=password_hash(), role=role, disabled=disabled)
        session.add(user)
        session.flush()
        return user.id


def staff_headers(database: Database, email: str) -> dict[str, str]:
    """Headers of a browser signed in as the user: the session cookie and the CSRF token."""
    with database.session() as session:
        opened = service.open_session(session, service.find_user(session, email))
        csrf = opened.row.csrf_token
    return {"Cookie": f"{STAFF_COOKIE}={opened.token}", "X-CSRF-Token": csrf}


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log the client in through the API; the cookie stays in the client; the CSRF token."""
    response = client.post("/api/staff/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]
