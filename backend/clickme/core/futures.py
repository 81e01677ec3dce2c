"""Futures settled from any thread, their callers free to give up (cancel) first."""

import contextlib
from concurrent.futures import Future, InvalidStateError
from typing import TypeVar

T = TypeVar("T")


def settle(future: Future[T], outcome: T | BaseException) -> None:
    """Sets the outcome (a result, or the error raised) unless the future is done already: its
    caller gave up (cancelled it) or another outcome came first."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def cancel_with(source: Future, follower: Future) -> None:
    """Cancels ``follower`` once ``source`` is cancelled (at once if it is already)."""
    source.add_done_callback(lambda done: follower.cancel() if done.cancelled() else None)
