"""The strokes' WebSocket: a player's batches of points over one connection, each answered as
``POST /api/rounds/{round_id}/points`` answers it.

A reveal over HTTP pays, besides its own work, for its request: the headers parsed and the
cookie read, the scope built, each middleware, the response's headers and its log line (the
event loop's CPU per reveal at 8 players about 1.25 ms over this socket against 1.48 over HTTP,
`docs/performance.md`, twenty-third pass; and 0.4 of the bytes on the wire). Over this socket
the cookie is checked once, at the handshake (with the page's origin: the cookie goes with a
cross-site handshake too), and each batch is one frame in and one frame out. The player's token
epoch is still checked by each batch's store, so a forgotten player's socket stores nothing.

A message is the batch (``PointBatchIn``) with its ``round_id``. Its answer is
``{"round_id", "seq", "status", "retry_after", "body"}``: ``status`` and ``body`` are the HTTP
route's status and JSON body (the reveal, or ``{"error": ...}`` through the app's own exception
handlers), ``retry_after`` its Retry-After in seconds (or null). ``round_id`` and ``seq`` are
the message's (null where it had none that could be read). Messages are answered in order, one
at a time: the page has one batch in flight.
"""

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import WebSocket
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Message

from clickme.core.errors import error_body
from clickme.core.https import POLICY_VIOLATION
from clickme.core.metrics import REQUEST_SECONDS
from clickme.game import reveal
from clickme.game.deps import GameRuntime
from clickme.game.fast_path import handled, signed_player
from clickme.game.schemas import StrokeBatchIn
from clickme.players.identity import PlayerToken

log = logging.getLogger("clickme.requests")

STROKES_PATH = "/api/strokes"
# A reveal over the socket in the request latency histogram (its "method").
SOCKET_METHOD = "WS"
# A socket without a message this long is closed (a player reading a result, or gone).
IDLE_TIMEOUT_S = 60.0
GOING_AWAY = 1001


def _host(value: str) -> str:
    return value.strip().lower()


def same_origin(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the handshake comes from a page of this site: its Origin's host (and port) is
    the Host it was sent to; a handshake without an Origin is not a browser's (no cookie of a
    foreign page's visitor comes with it)."""
    found = dict(headers)
    origin, host = found.get(b"origin"), found.get(b"host")
    if origin is None:
        return True
    if host is None:
        return False
    netloc = urlsplit(origin.decode("latin-1")).netloc
    return netloc != "" and _host(netloc) == _host(host.decode("latin-1"))


def _ids(data: str | bytes) -> tuple[Any, Any]:
    """The round id and seq of a message that was refused, where they can be read (else None)."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(message, dict):
        return None, None
    ids = (message.get("round_id"), message.get("seq"))
    return tuple(value if type(value) is int else None for value in ids)  # type: ignore[return-value]


def _answer(round_id: Any, seq: Any, status: int, body: bytes, retry_after: Any = None) -> str:
    return orjson.dumps(
        {
            "round_id": round_id,
            "seq": seq,
            "status": status,
            "retry_after": int(retry_after) if retry_after is not None else None,
            "body": orjson.Fragment(body),
        }
    ).decode()


async def _handled(websocket: WebSocket, error: Exception) -> Response:
    """The app's answer to an error, as its route would have given it; a 500 for a bug."""
    # the handlers take a request (the socket's handshake, as HTTP: they read nothing of it)
    response = await handled({**websocket.scope, "type": "http", "method": "GET"}, error)
    if response is None:
        log.exception("a batch over the strokes' socket failed", exc_info=error)
        body = orjson.dumps(error_body("internal_error", "internal error"))
        return Response(body, status_code=500)
    return response


async def _answered(
    websocket: WebSocket, runtime: GameRuntime, player: PlayerToken, data: Any
) -> tuple[int, str]:
    """The status and answer of one message (a reveal, or the error its route would have
    answered)."""
    try:
        batch = StrokeBatchIn.model_validate_json(data)
    except ValidationError as invalid:
        error: Exception = RequestValidationError(invalid.errors(include_input=False))
        round_id, seq = _ids(data)
    else:
        round_id, seq = batch.round_id, batch.seq
        try:
            revealed = await reveal.reveal(runtime, round_id, player, batch)
        except Exception as failed:
            error = failed
        else:
            return 200, _answer(round_id, seq, 200, orjson.dumps(revealed.body))
    response = await _handled(websocket, error)
    retry_after = response.headers.get("retry-after")
    status = response.status_code
    return status, _answer(round_id, seq, status, bytes(response.body), retry_after)


async def _next_message(websocket: WebSocket) -> Message | None:
    """The next message, or None once the socket is closed, or closed here (``GOING_AWAY``)
    after ``IDLE_TIMEOUT_S`` without one: the page opens it again for its next batch, and an
    idle socket holds none of the server's connections meanwhile."""
    try:
        async with asyncio.timeout(IDLE_TIMEOUT_S):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(GOING_AWAY)
        return None
    return None if message["type"] == "websocket.disconnect" else message


async def serve_strokes(websocket: WebSocket, runtime: GameRuntime) -> None:
    """Accept a signed player's socket from this site's page, then answer its batches in turn
    until it closes."""
    player = signed_player(websocket.scope, runtime.settings.resolved_secret_key())
    if player is None or not same_origin(websocket.scope["headers"]):
        await websocket.close(POLICY_VIOLATION)
        return
    await websocket.accept()
    opened, answered = time.perf_counter(), 0
    while True:
        message = await _next_message(websocket)
        if message is None:
            break
        started = time.perf_counter()
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        status, answer = await _answered(websocket, runtime, player, data)
        await websocket.send({"type": "websocket.send", "text": answer})
        REQUEST_SECONDS.labels(SOCKET_METHOD, STROKES_PATH, str(status)).observe(
            time.perf_counter() - started
        )
        answered += 1
    log.info(
        "WS %s closed: %d batches in %.1f s", STROKES_PATH, answered, time.perf_counter() - opened
    )
