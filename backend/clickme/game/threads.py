"""The game's blocking work, off the event loop in one hop to the runtime's reveal threads.

A reveal, and every round route (start, the start call, skip, finish, read), is an async route
whose database work runs in one such hop, in a session of its own when it needs one: FastAPI's
sync routes and dependencies took one anyio thread hop each (the session's opening and closing,
the player's check, the route: four or five per request), each dearer than this one.
"""

import asyncio
import contextvars
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from clickme.core.futures import Reply
from clickme.game.deps import GameRuntime
from clickme.players.identity import PlayerToken
from clickme.players.service import require_token_epoch

T = TypeVar("T")
P = ParamSpec("P")


async def off_loop(runtime: GameRuntime, work: Callable[[], T]) -> T:
    """``work()`` on the runtime's reveal threads, in this request's context (its id in the
    log): the event loop's own executor hop, about half the CPU of anyio's thread hop."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(runtime.reveal_threads, context.run, work)


async def settled_off_loop(runtime: GameRuntime, work: Callable[[Reply[T]], None]) -> T:
    """What ``work(reply)``, on the runtime's reveal threads in this request's context, answers
    with through its ``Reply``, then or later from another thread (an error it raises, at
    once). Work that hands on to another thread (the DNN's scorer) wakes the event loop once,
    at the end, where ``off_loop`` and a hand-off from the loop would wake it twice. If the
    caller gives up, work that has not started by then never does."""
    reply: Reply[T] = Reply(asyncio.get_running_loop())

    def run() -> None:
        if reply.given_up:
            return
        try:
            work(reply)
        except BaseException as error:  # the caller's to handle, as off_loop's are
            reply(error)

    context = contextvars.copy_context()
    runtime.reveal_threads.post(lambda: context.run(run))
    return await reply.waiter


async def as_player(
    runtime: GameRuntime,
    player: PlayerToken,
    work: Callable[Concatenate[Session, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``in_player_session`` in one hop."""
    return await off_loop(
        runtime, lambda: in_player_session(runtime, player, work, *args, **kwargs)
    )


def in_player_session(
    runtime: GameRuntime,
    player: PlayerToken,
    work: Callable[Concatenate[Session, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``work(session, *args, **kwargs)`` in a session of its own that first checks the cookie's
    token epoch is the player's current one (401 ``no_player`` if not: forgotten), committed
    when the work returns, rolled back when it raises."""
    with runtime.database.session() as session:
        require_token_epoch(session, player.player_id, player.epoch)
        return work(session, *args, **kwargs)


def in_session(
    runtime: GameRuntime,
    work: Callable[Concatenate[Session, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``work(session, *args, **kwargs)`` in a session of its own, committed when the work
    returns, rolled back when it raises (the work checks the cookie itself)."""
    with runtime.database.session() as session:
        return work(session, *args, **kwargs)
