"""Operations: a request id, a latency metric and one log line per request; /healthz (alive),
/readyz (database, Redis and the DNN answer) and /metrics (Prometheus)."""

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clickme.core.deps import get_runtime
from clickme.core.logs import REQUEST_ID, log_request
from clickme.core.metrics import REQUEST_SECONDS
from clickme.core.shared_store import REDIS_TIMEOUT_S
from clickme.runtime import Runtime
from clickme.scoring.scorer import IMAGE_SHAPE

log = logging.getLogger("clickme.requests")

REQUEST_ID_HEADER = b"x-request-id"
# A client's (or the proxy's) request id is kept when it is this tame; otherwise a new one.
_TAME_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
DATABASE_TIMEOUT_S = 2.0


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _TAME_REQUEST_ID.fullmatch(value):
            return value.decode()
    return secrets.token_hex(16)  # 32 hex digits, as uuid4().hex, at a quarter of its cost


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/rounds/{round_id}``), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path", UNMATCHED_ROUTE) if route else UNMATCHED_ROUTE


class RequestObserver:
    """Pure ASGI middleware: the request id (returned as X-Request-ID), the latency histogram
    by route template, method and status, and the request's log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _observe(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)


def _observe(scope: Scope, status: int, seconds: float) -> None:
    """The request's latency in the histogram, and its log line."""
    route = route_template(scope)
    REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(seconds)
    fields = {
        "method": scope["method"],
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    log_request(log, "%(method)s %(route)s %(status)s %(duration_ms).2f ms", fields)


router = APIRouter(tags=["ops"])
AppRuntime = Annotated[Runtime, Depends(get_runtime)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers (no dependency is asked)."""
    return {"status": "ok"}


def _select_one(runtime: Runtime) -> None:
    with runtime.database.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def _check(name: str, check: Awaitable[object], timeout_s: float) -> str:
    """ "ok", or what went wrong (any failure means not ready)."""
    try:
        await asyncio.wait_for(check, timeout_s)
    except Exception as exc:
        log.warning("readiness check %s failed: %r", name, exc)
        return f"failed: {type(exc).__name__}: {exc}"[:300]
    return "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unready"]
    checks: dict[str, str]


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a check failed"}},
)
async def readyz(runtime: AppRuntime) -> JSONResponse:
    """Ready: the database answers SELECT 1, Redis (when configured) PING, and the default DNN
    classifies an image (in this process, or through a worker with remote scoring)."""
    blank = np.zeros(IMAGE_SHAPE, dtype=np.uint8)
    checks = {
        "database": _check("database", run_in_threadpool(_select_one, runtime), DATABASE_TIMEOUT_S),
        "scorer": _check(
            "scorer", runtime.scorer.classify(blank), runtime.settings.scorer_timeout_ms / 1000
        ),
    }
    if runtime.redis is not None:
        checks["redis"] = _check("redis", run_in_threadpool(runtime.redis.ping), REDIS_TIMEOUT_S)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    ready = all(result == "ok" for result in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "unready", "checks": results},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    response_class=Response,  # errors stay documented as JSON; the metrics are plain text
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    """This process's metrics in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
