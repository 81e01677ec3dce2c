"""Futures settled from any thread, their callers free to give up (cancel) first."""

import asyncio
import contextlib
import threading
from concurrent.futures import Future, InvalidStateError
from typing import Generic, TypeVar

T = TypeVar("T")


def settle(future: Future[T], outcome: T | BaseException) -> None:
    """Sets the outcome (a result, or the error raised) unless the future is done already: its
    caller gave up (cancelled it) or another outcome came first."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class Reply(Generic[T]):
    """How work off the event loop answers a request awaiting ``waiter`` on the loop, from any
    thread: the first outcome given counts, none once the request gave up (cancelled it). One
    wake of the loop per answer, without the concurrent Future and its chaining to an asyncio
    one that ``asyncio.wrap_future`` adds (a third of a reveal's hop on the loop, cold). Made
    on the loop's thread; answered from that thread, it settles at once (no wake)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.waiter: asyncio.Future[T] = loop.create_future()
        self._followers: list[Future] = []
        self.waiter.add_done_callback(self._cancel_followers)

    def __call__(self, outcome: T | BaseException) -> None:
        """Answers with the outcome (a result, or the error raised), from any thread."""
        if threading.get_ident() == self._loop_thread:
            self._settle(outcome)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            self._loop.call_soon_threadsafe(self._settle, outcome)

    @property
    def given_up(self) -> bool:
        return self.waiter.cancelled()

    def cancels(self, follower: Future) -> None:
        """Cancels ``follower`` once the request gives up (at once if it has already)."""
        self._followers.append(follower)
        if self.waiter.cancelled():
            follower.cancel()

    def _settle(self, outcome: T | BaseException) -> None:
        if self.waiter.done():
            return
        if isinstance(outcome, BaseException):
            self.waiter.set_exception(outcome)
        else:
            self.waiter.set_result(outcome)

    def _cancel_followers(self, waiter: asyncio.Future[T]) -> None:
        if waiter.cancelled():
            for follower in self._followers:
                follower.cancel()
