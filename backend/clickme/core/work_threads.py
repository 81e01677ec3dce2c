"""Threads that take work most-recently-idle first, handed over with or without a Future.

``ThreadPoolExecutor.submit`` makes a Future and a work item for every call and checks for an
idle thread under a semaphore, and its idle threads take turns at a shared queue: at low load
each reveal ran on a thread cold from the last one's wait. Here a thread is started only when
none is idle, and the one idle last (its stack and caches warmest) takes the next work.
``post`` hands over the work alone, for a caller that gets its answer its own way
(``clickme.core.futures.Reply``); ``submit`` is the Executor's, for ``loop.run_in_executor``.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
Work = Callable[[], object]


class WorkThreads(Executor):
    """At most ``count`` threads named ``{name_prefix}_{i}``; work waits in order when all
    are busy."""

    def __init__(self, count: int, name_prefix: str) -> None:
        if count < 1:
            raise ValueError("at least one thread")
        self.count = count
        self.name_prefix = name_prefix
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle: list[SimpleQueue[Work | None]] = []  # each idle thread's inbox, last idle last
        self._backlog: deque[Work] = deque()
        self._shut = False

    def post(self, work: Work) -> None:
        """Runs ``work()`` on the thread idle last (a new one if none is, and there is room;
        else after the work before it); what it raises is logged only (work handed over this
        way answers for itself)."""
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot post work after shutdown")
            if self._idle:
                self._idle.pop().put(work)
            elif len(self._threads) < self.count:
                thread = threading.Thread(
                    target=self._serve,
                    args=(work,),
                    name=f"{self.name_prefix}_{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._backlog.append(work)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # the future's to raise, as an executor's are
                future.set_exception(error)
            else:
                future.set_result(result)

        self.post(run)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more work; each thread stops once the work posted before is done."""
        with self._lock:
            self._shut = True
            threads = list(self._threads)
            for inbox in self._idle:
                inbox.put(None)
            self._idle.clear()
        if wait:
            for thread in threads:
                thread.join()

    def _serve(self, first: Work) -> None:
        inbox: SimpleQueue[Work | None] = SimpleQueue()
        work: Work | None = first
        while work is not None:
            try:
                work()
            except BaseException:
                log.exception("work handed to %s threads failed", self.name_prefix)
            work = self._next(inbox)

    def _next(self, inbox: SimpleQueue[Work | None]) -> Work | None:
        """The work waiting, else (idle) the next handed to this thread; None: stop."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            if self._shut:
                return None
            self._idle.append(inbox)
        return inbox.get()
