"""`clickme admin create-user`: the first account, from a hidden prompt or standard input."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from clickme.accounts.models import StaffUser
from clickme.accounts.security import verify_password
from clickme.cli import app
from clickme.core.config import get_settings
from clickme.core.db import Database

runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A migrated SQLite database in a fresh data dir, as the CLI sees it."""
    monkeypatch.setenv("CLICKME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLICKME_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    db = Database(get_settings().resolved_database_url)
    yield db
    db.dispose()
    get_settings.cache_clear()


def stored_user(database: Database, email: str) -> StaffUser | None:
    with database.session() as session:
        return session.scalar(select(StaffUser).where(StaffUser.email == email))


def test_create_user_reads_the_password_from_stdin(database: Database) -> None:
    result = runner.invoke(
        app,
        ["admin", "create-user", "Boss@Example.org", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin boss@example.org" in result.output
    user = stored_user(database, "boss@example.org")
    assert user.role == "admin" and not user.disabled
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, PASSWORD)


def test_create_user_prompts_hidden_and_confirmed(database: Database) -> None:
    args = ["admin", "create-user", "r@example.org", "--role", "researcher"]
    result = runner.invoke(app, args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden
    assert stored_user(database, "r@example.org").role == "researcher"
    mismatch = runner.invoke(app, [*args[:2], "s@example.org"], input=f"{PASSWORD}\nother\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output
    assert stored_user(database, "s@example.org") is None


@pytest.mark.parametrize(
    "args, password, rule",
    [
        (["x@example.org", "--role", "admin"], "too short", "password must be at least 12"),
        (["x@example.org", "--role", "owner"], PASSWORD, "role must be admin or researcher"),
        (["not-an-email", "--role", "admin"], PASSWORD, "email must be an address"),
    ],
)
def test_create_user_refuses_bad_input_naming_the_rule(
    database: Database, args: list[str], password: str, rule: str
) -> None:
    result = runner.invoke(
        app, ["admin", "create-user", *args, "--password-stdin"], input=password + "\n"
    )
    assert result.exit_code == 1
    assert result.output.count("invalid") == 1 and rule in result.output
    assert stored_user(database, "x@example.org") is None


def test_create_user_without_a_terminal_says_to_use_password_stdin(database: Database) -> None:
    result = runner.invoke(app, ["admin", "create-user", "x@example.org"], input="")
    assert result.exit_code == 1
    assert "Aborted" not in result.output
    assert "--password-stdin" in result.output
    assert stored_user(database, "x@example.org") is None


def test_create_user_refuses_a_taken_email(database: Database) -> None:
    args = ["admin", "create-user", "boss@example.org", "--password-stdin"]
    assert runner.invoke(app, args, input=PASSWORD + "\n").exit_code == 0
    again = runner.invoke(app, args, input=PASSWORD + "\n")
    assert again.exit_code == 1 and "already exists" in again.output


def test_admin_commands_have_help() -> None:
    for command in (["admin"], ["admin", "create-user"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
