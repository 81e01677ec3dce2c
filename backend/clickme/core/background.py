"""Work done after a response, on one thread of the API process, never twice at once."""

import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)


class BackgroundWorker:
    """Runs jobs one at a time on its own thread. A job whose key is already waiting is not
    queued again, and with ``max_waiting`` jobs waiting new ones are dropped (the caller's next
    trigger brings them back), so a burst never queues unbounded work."""

    def __init__(self, name: str, max_waiting: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._waiting: set[Hashable] = set()
        self._lock = threading.Lock()
        self.max_waiting = max_waiting

    def submit(self, key: Hashable, job: Callable[[], object]) -> bool:
        """Queue the job unless its key is waiting or the queue is full; whether it was queued."""
        with self._lock:
            if key in self._waiting or len(self._waiting) >= self.max_waiting:
                return False
            self._waiting.add(key)
        self._executor.submit(self._run, key, job)
        return True

    def _run(self, key: Hashable, job: Callable[[], object]) -> None:
        with self._lock:
            self._waiting.discard(key)
        try:
            job()
        except Exception:
            logger.exception("background job %r failed", key)

    def close(self) -> None:
        """Finish the queued jobs, then stop the thread."""
        self._executor.shutdown(wait=True)
