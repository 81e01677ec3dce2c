"""One JSON shape for every error: {"error": {"code", "message"}}; no bare 500 for bad input."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis import RedisError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ClickmeError(Exception):
    """An error a client caused or should know about, with its HTTP status and a stable code."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


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
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
