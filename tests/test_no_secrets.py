"""No secret in the repository, and none in the logs: passwords, session tokens, CSRF tokens and
cookies never reach a log line, whatever the outcome of a sign-in."""

import io
import re
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

from clickme.accounts.security import STAFF_COOKIE
from clickme.core.db import Database
from clickme.core.logs import configure_logging
from tests.accounts.staff import PASSWORD, add_staff_user

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a committed secret looks like: private keys, cloud keys, tokens, and CLICKME_SECRET_KEY or
# a password given a literal value (compose files must take them from the environment).
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    "literal secret setting": re.compile(
        r"(CLICKME_SECRET_KEY|POSTGRES_PASSWORD)\s*[:=]\s*['\"]?(?!\$\{)[A-Za-z0-9+/_-]{8,}"
    ),
}
# Tests build throwaway secrets on purpose; this file names the patterns.
ALLOWED_FOLDERS = ("tests/",)


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    return [REPO_ROOT / name for name in listed if not name.startswith(ALLOWED_FOLDERS)]


def test_no_secret_is_committed() -> None:
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        found += [
            f"{path.relative_to(REPO_ROOT)}: {name}"
            for name, pattern in SECRET_PATTERNS.items()
            if pattern.search(text)
        ]
    assert not found, found


def test_the_patterns_catch_what_they_are_for() -> None:
    assert SECRET_PATTERNS["literal secret setting"].search("CLICKME_SECRET_KEY=abcdefgh12345678")
    assert not SECRET_PATTERNS["literal secret setting"].search(
        "CLICKME_SECRET_KEY: ${CLICKME_SECRET_KEY:?set CLICKME_SECRET_KEY}"
    )
    assert SECRET_PATTERNS["private key"].search("-----BEGIN RSA PRIVATE KEY-----")


def test_sign_ins_leave_no_password_or_token_in_the_logs(
    client: TestClient,
    database: Database,
    log_lines: io.StringIO,
) -> None:
    configure_logging("json", log_lines)
    add_staff_user(database, "logs@example.org", "admin")
    wrong = client.post(
        "/api/staff/login", json={"email": "logs@example.org", "password": "wrong password 123"}
    )
    assert wrong.status_code == 401
    right = client.post(
        "/api/staff/login", json={"email": "logs@example.org", "password": PASSWORD}
    )
    assert right.status_code == 200
    csrf = right.json()["csrf_token"]
    client.post("/api/staff/logout", headers={"X-CSRF-Token": csrf})
    logged = log_lines.getvalue()
    assert "/api/staff/login" in logged  # the requests were logged...
    for secret in ("wrong password 123", PASSWORD, right.cookies[STAFF_COOKIE], csrf):
        assert secret not in logged  # ...and nothing secret with them
