"""`clickme admin`: staff accounts from the command line (the first admin in particular)."""

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from clickme.accounts import service
from clickme.accounts.schemas import MIN_PASSWORD_LENGTH, StaffUserCreate
from clickme.core.config import get_settings
from clickme.core.db import Database
from clickme.core.errors import ClickmeError

app = typer.Typer(help="Staff accounts.", no_args_is_help=True)


NO_TERMINAL = (
    "no terminal to ask for the password: pipe it in with --password-stdin, e.g.\n"
    "  printf '%s\\n' 'a long passphrase' | clickme admin create-user EMAIL --password-stdin"
)
RULES = {
    "email": "the email must be an address such as name@lab.org",
    "password": f"the password must be at least {MIN_PASSWORD_LENGTH} characters long",
    "role": "the role must be admin or researcher",
}


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    except typer.Abort:  # end of input: nobody at a terminal to answer
        typer.echo(NO_TERMINAL, err=True)
        raise typer.Exit(1) from None


def broken_rules(error: ValidationError) -> list[str]:
    """One line per field that failed, naming its rule."""
    fields = dict.fromkeys(str(detail["loc"][0]) for detail in error.errors())
    return [f"invalid {field}: {RULES.get(field, 'see --help')}" for field in fields]


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The staff member's email (their login).")],
    role: Annotated[str, typer.Option(help="admin or researcher.")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a staff account; the password is asked for (hidden, twice) unless piped in."""
    password = _read_password(password_stdin)
    try:
        data = StaffUserCreate(email=email, password=password, role=role)
    except ValidationError as exc:
        typer.echo("\n".join(broken_rules(exc)), err=True)
        raise typer.Exit(1) from None
    database = Database(get_settings().resolved_database_url)
    try:
        with database.session() as session:
            user = service.create_user(session, data)
    except ClickmeError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    typer.echo(f"created {user.role} {user.email}")
