"""The floor under a reveal: the least a Python request with a reveal's round trips costs.

    CLICKME_FLOOR_DATABASE_URL=postgresql://... CLICKME_FLOOR_REDIS_URL=redis://... \
        python -m uvicorn floor_app:app --http httptools --no-access-log

``bench_requests.py --floor`` runs it beside ClickMe's API and sends it the same requests. It
is no game: every POST is read whole and parsed as JSON on the event loop, handed to a thread
(one hop), which makes the round trips of a reveal with a scoring worker (one PostgreSQL
statement in autocommit, then two Redis commands: the rate limit's and the hand-off to the
worker's) on connections it keeps, and the answer goes back as JSON through uvicorn with
httptools on uvloop, as ``clickme serve`` runs. No framework, middleware, validation, ORM,
log line or DNN answer: what ClickMe's API spends beyond this is its own.
"""

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import psycopg
import redis

ANSWER = orjson.dumps({"round_id": 1, "state": "playing", "seq": 1, "guesses": []})
HEADERS = [(b"content-type", b"application/json")]
RATE_KEY = "clickme-floor:rate"  # counted once a request, as the rate limit's window is
Message = dict[str, Any]
_threads = ThreadPoolExecutor(1, thread_name_prefix="floor")
_kept = threading.local()


def _connections() -> tuple[psycopg.Connection, redis.Redis]:
    """This thread's PostgreSQL connection (autocommit) and Redis client, made once."""
    if not hasattr(_kept, "postgres"):
        url = os.environ["CLICKME_FLOOR_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
        _kept.postgres = psycopg.connect(url, autocommit=True)
        _kept.redis = redis.Redis.from_url(os.environ["CLICKME_FLOOR_REDIS_URL"], protocol=2)
    return _kept.postgres, _kept.redis


def round_trips(size: int) -> int:
    """A reveal's round trips with nothing around them: a statement, two Redis commands."""
    postgres, client = _connections()
    stored = postgres.execute("SELECT %s::int", (size,)).fetchone()
    client.incr(RATE_KEY)
    client.ping()
    return 0 if stored is None else stored[0]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Every POST: the body read and parsed, ``round_trips`` in one hop, the answer."""
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    orjson.loads(body or b"null")  # parsed, as every request's body is
    await asyncio.get_running_loop().run_in_executor(_threads, round_trips, len(body))
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
