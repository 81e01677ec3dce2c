"""Prometheus metrics of this process (served at /metrics; rates come from Prometheus).

Every metric object lives here, so that the API, the in-process micro-batcher and the remote
scoring worker report under the same names. One process, one registry: under several processes
(API replicas, workers) Prometheus scrapes each one; prometheus_client's multi-process mode is
not used.
"""

import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

REQUEST_SECONDS = Histogram(
    "clickme_http_request_duration_seconds",
    "HTTP request latency, by route template (not the raw path), method and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INFERENCE_BATCH_SIZE = Histogram(
    "clickme_inference_batch_size",
    "Images in one forward pass of the DNN.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
INFERENCE_QUEUE_WAIT_SECONDS = Histogram(
    "clickme_inference_queue_wait_seconds",
    "Time an image waited for its forward pass.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INFERENCE_QUEUE_DEPTH = Gauge(
    "clickme_inference_queue_depth", "Images waiting for a forward pass in this process."
)
ROUNDS_FINISHED = Counter(
    "clickme_rounds_finished_total", "Rounds ended (committed), by outcome.", ["outcome"]
)
POINTS_STORED = Counter("clickme_points_stored_total", "Painted points stored.")


def record_batch(queue_waits_s: Iterable[float]) -> None:
    """One forward pass: its size and how long each of its images waited for it."""
    waits = list(queue_waits_s)
    INFERENCE_BATCH_SIZE.observe(len(waits))
    for wait in waits:
        INFERENCE_QUEUE_WAIT_SECONDS.observe(wait)


# The roles of this process's threads, by the names Python gives them (``thread_role``).
REVEAL_THREAD_PREFIX = "reveal"
SCORER_THREAD_NAME = "micro-batcher"


def thread_role(thread: threading.Thread | None) -> str:
    """``main`` (the event loop under ``clickme serve``), ``reveal`` (the game's blocking work),
    ``scorer`` (the in-process DNN's batches), ``other`` (any other Python thread) or ``native``
    (None: a thread Python did not start, such as the DNN runtime's intra-op pool)."""
    if thread is None:
        return "native"
    if thread is threading.main_thread():
        return "main"
    if thread.name.startswith(REVEAL_THREAD_PREFIX):
        return "reveal"
    return "scorer" if thread.name == SCORER_THREAD_NAME else "other"


def cpu_by_thread_s(process: int | str = "self") -> dict[int, float]:
    """The CPU seconds of each of a process's threads (by thread id; this process's unless
    given a pid) from their schedstat, exact to the nanosecond; empty once it is gone, or where
    there is no /proc."""
    seconds = {}
    try:
        tids = os.listdir(f"/proc/{process}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            schedstat = Path(f"/proc/{process}/task/{tid}/schedstat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        seconds[int(tid)] = int(schedstat.split()[0]) / 1e9
    return seconds


class ThreadCpuCollector(Collector):
    """``clickme_thread_cpu_seconds_total`` by thread role: where this process's CPU goes (the
    API's own against its DNN's, ``benchmarks/bench_reveal.py``). The long-lived roles are read
    thread by thread (a thread that ended keeps its last reading); ``other`` is the rest of the
    process's CPU, so threads that came and went between two readings count there. The counts
    never fall."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[int, tuple[str, float]] = {}  # by native thread id: (role, seconds)
        self._ended = dict.fromkeys(("main", "reveal", "scorer", "native"), 0.0)
        self._other = 0.0

    def seconds_by_role(self) -> dict[str, float]:
        threads = {thread.native_id: thread for thread in threading.enumerate()}
        cpu = cpu_by_thread_s()
        process = time.process_time()  # every thread's, the ended ones' too
        with self._lock:
            for tid, (role, seconds) in list(self._last.items()):
                if cpu.get(tid, -1.0) < seconds:  # ended (its id maybe taken by a new thread)
                    self._ended[role] += seconds
                    del self._last[tid]
            for tid, seconds in cpu.items():
                role = self._last[tid][0] if tid in self._last else thread_role(threads.get(tid))
                if role != "other":
                    self._last[tid] = (role, seconds)
            totals = dict(self._ended)
            for role, seconds in self._last.values():
                totals[role] += seconds
            self._other = max(self._other, process - sum(totals.values()))
            return {**totals, "other": self._other}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "clickme_thread_cpu_seconds",
            "CPU seconds of this process's threads, by role: main (the event loop of the API), "
            "reveal, scorer (the in-process DNN's batches), other, native (threads Python did "
            "not start: the DNN runtime's pool).",
            labels=["role"],
        )
        for role, seconds in self.seconds_by_role().items():
            family.add_metric([role], seconds)
        yield family


REGISTRY.register(ThreadCpuCollector())
