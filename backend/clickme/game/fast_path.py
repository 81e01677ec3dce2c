"""The game's fast path: a well-formed batch of points goes straight to the reveal pipeline, a
new round and a round's start call straight to their work.

A reveal is most of the game's traffic, and FastAPI's request handling (routing through every
route, dependency solving, parsing the body to Python objects and validating them, the answer
validated again and encoded) cost the event loop more than the pipeline's own part; each round
also has its new round and its start call. This pure ASGI middleware, innermost (inside the
request observer, the security headers and the body limit), takes ``POST
/api/rounds/{round_id}/points`` when the body is JSON that ``PointBatchIn`` accepts (validated
from the bytes, in pydantic's Rust core), ``POST /api/rounds`` when it is JSON that
``RoundCreate`` accepts, and ``POST /api/rounds/{round_id}/start`` (its body is not read), each
when the cookie is signed. It answers as the routes do, errors through the app's own exception
handlers. Anything else (a malformed body, a missing or forged cookie, another content type)
goes on to the route with the body as received, so every refusal reads exactly as before.
"""

import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clickme.core.schemas import MAX_DB_ID
from clickme.game import reveal, starts
from clickme.game.deps import GameRuntime
from clickme.game.schemas import PointBatchIn, RoundCreate
from clickme.game.threads import off_loop
from clickme.players.identity import (
    PLAYER_COOKIE,
    TOKENS_KEPT,
    PlayerToken,
    scope_ip_hash,
    verify_player_token,
)

# A new round, or a round's reveal or start call: the round id (in range: checked against
# MAX_DB_ID) and the action.
_ROUND_ACTION = re.compile(r"/api/rounds(?:/([1-9][0-9]{0,18})/(points|start))?")
NEW_ROUND = "new round"
_JSON = re.compile(rb"application/json\s*(;\s*charset=\"?utf-8\"?\s*)?", re.IGNORECASE)

ExceptionHandler = Callable[[Request, Exception], Response | Awaitable[Response]]
Body = TypeVar("Body", bound=BaseModel)


def revealed_response(revealed: reveal.Revealed) -> Response:
    """The reveal's answer as JSON, with its Server-Timing when it was scored."""
    headers = {"Server-Timing": revealed.server_timing} if revealed.server_timing else None
    return Response(orjson.dumps(revealed.body), media_type="application/json", headers=headers)


def _round_action(scope: Scope) -> tuple[int, str] | None:
    """The round (an id in range; 0 for a new one) and the action (``points``, ``start`` or
    ``NEW_ROUND``) of a POST to one of them, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    match = _ROUND_ACTION.fullmatch(scope["path"])
    if match is None:
        return None
    if match[1] is None:
        return 0, NEW_ROUND
    if int(match[1]) > MAX_DB_ID:
        return None
    return int(match[1]), match[2]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


@functools.lru_cache(maxsize=TOKENS_KEPT)
def _player_cookie(raw: bytes) -> str | None:
    """The player cookie in a Cookie header, read as Starlette reads cookies; the last
    ``TOKENS_KEPT`` headers' kept (the same header comes with each of a player's strokes)."""
    return cookie_parser(raw.decode("latin-1")).get(PLAYER_COOKIE)


def signed_player(scope: Scope, secret: str) -> PlayerToken | None:
    """The player the request's cookie is signed for."""
    raw = _header(scope, b"cookie")
    token = None if raw is None else _player_cookie(raw)
    return None if token is None else verify_player_token(secret, token)


def _json_body(scope: Scope, body: bytes, model: type[Body]) -> Body | None:
    """The body as the model, when it is JSON that the model accepts; else None."""
    content_type = _header(scope, b"content-type")
    if content_type is None or _JSON.fullmatch(content_type) is None:
        return None
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return None


async def _body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _handler(app: Any, error: Exception) -> ExceptionHandler | None:
    """The app's handler for the error's class or its nearest base, as Starlette picks it."""
    handlers: dict[Any, ExceptionHandler] = app.exception_handlers
    for cls in type(error).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


@dataclass(frozen=True)
class MatchedRoute:
    """What the request observer reads of the route a request matched: its path template
    (FastAPI's own route objects are nested in included routers, not worth looking up)."""

    path: str


REVEAL_ROUTE = MatchedRoute("/api/rounds/{round_id}/points")
START_ROUTE = MatchedRoute("/api/rounds/{round_id}/start")
NEW_ROUND_ROUTE = MatchedRoute("/api/rounds")


def _json_response(model: BaseModel, status_code: int = 200) -> Response:
    """A route's answer, as FastAPI encodes its model (in JSON mode)."""
    content = orjson.dumps(model.model_dump(mode="json"))
    return Response(content, status_code=status_code, media_type="application/json")


async def _started(runtime: GameRuntime, round_id: int, player: PlayerToken) -> Response:
    """The start call's answer, as the route's (``RoundClock``)."""
    clock = await off_loop(runtime, lambda: starts.start_clock(runtime, round_id, player))
    return _json_response(clock)


async def _new_round(
    scope: Scope, runtime: GameRuntime, player: PlayerToken, body: RoundCreate
) -> Response:
    """The new round's answer, as the route's (``RoundOut``, 201)."""
    slug = starts.admitted(runtime, body)
    ip_hash = scope_ip_hash(runtime.settings.resolved_secret_key(), scope)
    out = await off_loop(runtime, lambda: starts.new_round(runtime, slug, body, player, ip_hash))
    return _json_response(out, status_code=201)


async def _revealed(
    runtime: GameRuntime, round_id: int, player: PlayerToken, batch: PointBatchIn
) -> Response:
    return revealed_response(await reveal.reveal(runtime, round_id, player, batch))


async def _answered(scope: Scope, answer: Awaitable[Response]) -> Response:
    """The answer, or the app's handler's response to the error it raised."""
    try:
        return await answer
    except Exception as error:
        response = await handled(scope, error)
        if response is None:
            raise
        return response


async def handled(scope: Scope, error: Exception) -> Response | None:
    """The app's own exception handler's response to the error (an HTTP scope's request given
    to it), or None when the app has none for it."""
    handler = _handler(scope["app"], error)
    if handler is None:
        return None
    response = handler(Request(scope), error)
    return await response if inspect.isawaitable(response) else response


class GameFastPath:
    """Pure ASGI middleware: well-formed reveals, new rounds and start calls answered without
    FastAPI's request handling (see the module); the rest passes on, its body replayed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = _round_action(scope)
        if matched is None:
            await self.app(scope, receive, send)
            return
        round_id, action = matched
        runtime: GameRuntime = scope["app"].state.runtime
        player = signed_player(scope, runtime.settings.resolved_secret_key())
        answer: Awaitable[Response] | None
        if action == "start":
            if player is None:
                await self.app(scope, receive, send)
                return
            scope["route"] = START_ROUTE
            answer = _started(runtime, round_id, player)
        else:
            body = await _body(receive)
            if body is None:
                return
            answer = self._with_body(scope, runtime, round_id, action, player, body)
            if answer is None:
                await self.app(scope, _replaying(body, receive), send)
                return
        response = await _answered(scope, answer)
        await response(scope, receive, send)

    @staticmethod
    def _with_body(
        scope: Scope,
        runtime: GameRuntime,
        round_id: int,
        action: str,
        player: PlayerToken | None,
        body: bytes,
    ) -> Awaitable[Response] | None:
        """The answer to a new round or a reveal from a signed player with a well-formed
        body; None for anything else (the route's to answer)."""
        if player is None:
            return None
        if action == NEW_ROUND:
            created = _json_body(scope, body, RoundCreate)
            if created is None:
                return None
            scope["route"] = NEW_ROUND_ROUTE
            return _new_round(scope, runtime, player, created)
        batch = _json_body(scope, body, PointBatchIn)
        if batch is None:
            return None
        scope["route"] = REVEAL_ROUTE
        return _revealed(runtime, round_id, player, batch)
