"""One JSON shape for every error: {"error": {"code", "message"}}; no bare 500 for bad input."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis import RedisError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ClickmeError(Exception):
    """An error a client caused or should know about: its kind (a subclass below, named for what
    happened) and a stable code. Services raise kinds; ``HTTP_STATUS`` alone maps them to HTTP."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers

    @property
    def status(self) -> int:
        """The HTTP status of this error's kind (the nearest kind among its classes)."""
        return next(HTTP_STATUS[kind] for kind in type(self).__mro__ if kind in HTTP_STATUS)


class NotSignedIn(ClickmeError):
    """The caller is not known: no player or staff session, or wrong credentials."""


class Forbidden(ClickmeError):
    """The caller is known but may not do this."""


class NotFound(ClickmeError):
    """What the request names does not exist."""


class Conflict(ClickmeError):
    """The request does not fit the present state (already done, taken, out of order)."""


class Gone(ClickmeError):
    """What the request names existed but is no more."""


class Unprocessable(ClickmeError):
    """The request is well formed but its content is refused."""


class TooManyRequests(ClickmeError):
    """The caller is over a limit: try again later (Retry-After)."""


class Unavailable(ClickmeError):
    """The server cannot answer now: try again soon."""


# The one mapping from an error's kind to its HTTP status.
HTTP_STATUS: dict[type[ClickmeError], int] = {
    NotSignedIn: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    Unprocessable: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorDetail(BaseModel):
    """What went wrong: a stable code for programs, a message for people."""

    code: str
    message: str
    details: list[ValidationIssue] | None = None  # invalid_request: the first offending fields


class ErrorBody(BaseModel):
    error: ErrorDetail


# Every error status the API answers, each with the one error body: declared once for all routes.
ERROR_STATUSES = (400, 401, 403, 404, 409, 410, 413, 422, 429, 503)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
    for status in ERROR_STATUSES
}


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    return f"{location}: {first.get('msg', 'invalid')}" if location else first.get("msg", "invalid")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DataError)
    async def _unstorable_value(_request: Request, exc: DataError) -> JSONResponse:
        """Defence in depth: a value the database refuses (schemas should have caught it)."""
        log.warning("database refused a value: %s", exc.orig)
        body = error_body("invalid_value", "a value in the request cannot be stored")
        return JSONResponse(body, status_code=422)

    @app.exception_handler(RedisError)
    async def _store_unavailable(_request: Request, exc: RedisError) -> JSONResponse:
        """Redis (rate limits, leaderboard) is out of reach: a clear 503, never a bare 500."""
        log.warning("Redis failed: %r", exc)
        body = error_body("store_unavailable", "the shared store is unreachable, try again soon")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(DBAPIError)
    async def _database_unavailable(_request: Request, exc: DBAPIError) -> JSONResponse:
        """The database is out of reach (down, restarting, the connection lost): a clear 503
        and nothing acknowledged; the client repeats the request (a batch whose commit got
        through is then acknowledged as a duplicate). Other database errors stay 500s."""
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            raise exc
        log.warning("database unavailable: %s", exc.orig)
        body = error_body("database_unavailable", "the database is unreachable, try again soon")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(ClickmeError)
    async def _clickme_error(_request: Request, exc: ClickmeError) -> JSONResponse:
        body = error_body(exc.code, exc.message)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()[:20]
        ]
        body = error_body("invalid_request", _validation_message(exc), details=details)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
