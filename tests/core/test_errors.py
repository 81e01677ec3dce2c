"""Domain errors: services raise kinds named for what happened; one mapping gives their status."""

import ast
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clickme.core import errors
from clickme.core.errors import (
    ERROR_STATUSES,
    HTTP_STATUS,
    ClickmeError,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    NotSignedIn,
    TooManyRequests,
    Unavailable,
    Unprocessable,
    install_error_handlers,
)
from clickme.scoring.scorer import ScorerBusyError

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "backend" / "clickme"

# Each kind and the HTTP status the API documents for it.
DOCUMENTED: dict[type[ClickmeError], int] = {
    NotSignedIn: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    Unprocessable: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}


def client_raising(error: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    def fail() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


def test_every_kind_is_mapped_once_to_a_declared_status() -> None:
    kinds = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, ClickmeError) and value is not ClickmeError
    }
    assert HTTP_STATUS == DOCUMENTED
    assert kinds == DOCUMENTED.keys()
    assert set(HTTP_STATUS.values()) <= set(ERROR_STATUSES)  # each in the OpenAPI responses


@pytest.mark.parametrize(
    ("kind", "status"), list(DOCUMENTED.items()), ids=[k.__name__ for k in DOCUMENTED]
)
def test_the_handler_answers_each_kind_with_its_status(
    kind: type[ClickmeError], status: int
) -> None:
    response = client_raising(kind("some_code", "what happened")).get("/")
    assert response.status_code == status
    assert response.json() == {"error": {"code": "some_code", "message": "what happened"}}
    assert kind("some_code", "what happened").status == status


def test_headers_and_subclassed_kinds_come_through() -> None:
    limited = client_raising(TooManyRequests("rate_limited", "slow", headers={"Retry-After": "7"}))
    response = limited.get("/")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    busy = client_raising(ScorerBusyError()).get("/")
    assert (busy.status_code, busy.json()["error"]["code"]) == (503, "scorer_busy")


def numeric_status_calls(module: str, source: str) -> list[str]:
    """Calls that still give an error an HTTP status: ``ClickmeError(...)`` itself (only its
    kinds are raised) or any error class called with a number first."""
    names = {"ClickmeError", *(kind.__name__ for kind in DOCUMENTED)}
    found = []
    for node in ast.walk(ast.parse(source, module)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0] if node.args else None
        numeric = isinstance(first, ast.Constant) and isinstance(first.value, int)
        if name == "ClickmeError" or (name in names and numeric):
            found.append(f"{module}:{node.lineno} {ast.unparse(node)[:80]}")
    return found


def test_no_module_gives_an_error_a_numeric_status() -> None:
    violations = [
        found
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for found in numeric_status_calls(str(path.relative_to(PACKAGE_DIR)), path.read_text())
    ]
    assert violations == [], "raise a kind from clickme.core.errors:\n" + "\n".join(violations)


def test_the_checker_sees_numeric_statuses() -> None:
    source = (
        "raise ClickmeError(404, 'x', 'y')\n"
        "raise errors.ClickmeError('x', 'y')\n"
        "raise NotFound(404, 'x', 'y')\n"
        "raise NotFound('x', 'y')\n"
        "total = sum(404, 1)\n"
    )
    assert [line.split()[0] for line in numeric_status_calls("probe.py", source)] == [
        "probe.py:1",
        "probe.py:2",
        "probe.py:3",
    ]
