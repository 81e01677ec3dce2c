"""Dynamic micro-batching: concurrent requests share one forward pass on a dedicated thread."""

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from clickme.core import metrics
from clickme.core.futures import settle

RATE_WINDOW_S = 2.0


class AnswerRate:
    """How fast a scorer answers while it has work: its busy seconds per answer over the last
    ``RATE_WINDOW_S`` (a busy stretch runs from a request handed to an idle scorer, or from its
    previous answer, to its next answer), and from it how long the requests waiting now take
    to be answered. Unlike answers per second, it does not fall when fewer requests come: a
    crowd arriving after a quiet spell is not refused for the quiet. Noted from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: deque[tuple[float, float, int]] = deque()  # (when, busy s, answers)
        self._busy_s = 0.0
        self._answered = 0
        self._busy_since: float | None = None

    def submitted(self, idle: bool) -> None:
        """Notes a request handed to the scorer; ``idle``: none was waiting before it."""
        if idle:
            with self._lock:
                self._busy_since = time.monotonic()

    def note(self, answers: int = 1) -> None:
        now = time.monotonic()
        with self._lock:
            busy = now - (self._busy_since if self._busy_since is not None else now)
            self._answers.append((now, busy, answers))
            self._busy_s += busy
            self._answered += answers
            self._busy_since = now
            self._forget(now - RATE_WINDOW_S)

    def wait_s(self, waiting: int) -> float:
        """Seconds until ``waiting`` requests are answered at the recent busy seconds per answer;
        0 when nothing was answered lately (no estimate: nothing is refused on a guess)."""
        with self._lock:
            self._forget(time.monotonic() - RATE_WINDOW_S)
            return waiting * self._busy_s / self._answered if self._answered else 0.0

    def _forget(self, horizon: float) -> None:
        while self._answers and self._answers[0][0] < horizon:
            _when, busy, answers = self._answers.popleft()
            self._busy_s -= busy
            self._answered -= answers


class BatcherClosedError(RuntimeError):
    """The batcher was closed (or never started) before the request could be answered."""


@dataclass
class _Request:
    item: np.ndarray
    future: Future[np.ndarray]
    enqueued_at: float = field(default_factory=time.monotonic)


_STOP = object()


class MicroBatcher:
    """Collects items until ``max_batch`` are waiting or the oldest has waited ``max_wait_ms``,
    then runs ``run_batch`` on the stacked items in a worker thread and hands each caller its row.
    """

    def __init__(
        self, run_batch: Callable[[np.ndarray], np.ndarray], max_batch: int, max_wait_ms: float
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms cannot be negative")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        # a SimpleQueue: its put and get are C, not the Python conditions of queue.Queue
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._waiting = 0  # submitted and not yet answered
        self.rate = AnswerRate()

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise BatcherClosedError("a closed batcher cannot be restarted")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=metrics.SCORER_THREAD_NAME, daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stops the worker after the batch in flight; requests still waiting fail."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._fail_waiting()
        self._queue.put(_STOP)
        if thread is not None:
            thread.join()

    async def submit(self, item: np.ndarray) -> np.ndarray:
        """The item's row of the batch result (its exception, if the batch failed)."""
        return await asyncio.wrap_future(self.send(item))

    def send(self, item: np.ndarray) -> Future[np.ndarray]:
        """Queues the item from any thread; its future gets the item's row of the batch result
        (or the batch's exception). Cancelling it gives up: the item is left out of its batch."""
        future: Future[np.ndarray] = Future()
        with self._lock:
            if self._closed or self._thread is None:
                raise BatcherClosedError("the batcher is not running")
            metrics.INFERENCE_QUEUE_DEPTH.inc()  # before the put: the worker may take it at once
            self.rate.submitted(idle=self._waiting == 0)
            self._waiting += 1
            self._queue.put(_Request(item, future))
        future.add_done_callback(self._no_longer_waiting)
        return future

    def _no_longer_waiting(self, _answered: Future[np.ndarray]) -> None:
        with self._lock:
            self._waiting -= 1

    def expected_wait_s(self) -> float:
        """How long a request submitted now would wait for its answer (see ``AnswerRate``)."""
        return self.rate.wait_s(self._waiting + 1)

    def _serve(self) -> None:
        while True:
            batch, stop = self._collect()
            if batch:
                self._run(batch)
            if stop:
                return

    def _collect(self) -> tuple[list[_Request], bool]:
        """Blocks for one request, then gathers more until the batch is full or its wait is over."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        assert isinstance(first, _Request)
        batch = [first]
        deadline = first.enqueued_at + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=max(remaining, 0.0), block=remaining > 0)
            except queue.Empty:
                break
            if nxt is _STOP:
                return batch, True
            assert isinstance(nxt, _Request)
            batch.append(nxt)
        return batch, False

    def _run(self, batch: list[_Request]) -> None:
        metrics.INFERENCE_QUEUE_DEPTH.dec(len(batch))
        live = [request for request in batch if not request.future.done()]
        if not live:
            return
        now = time.monotonic()
        metrics.record_batch(now - request.enqueued_at for request in live)
        try:
            results = self.run_batch(np.stack([request.item for request in live]))
            if len(results) != len(live):
                raise ValueError(f"run_batch gave {len(results)} rows for {len(live)} items")
        except Exception as error:
            for request in live:
                settle(request.future, error)
            return
        self.rate.note(len(live))
        for request, row in zip(live, results, strict=True):
            settle(request.future, row)

    def _fail_waiting(self) -> None:
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(pending, _Request):
                metrics.INFERENCE_QUEUE_DEPTH.dec()
                settle(pending.future, BatcherClosedError("the batcher was closed"))
