"""The benchmarks' readings of a server's /metrics: its DNN's images and passes, and its CPU
by thread role."""

import threading
import time

import httpx
import pytest
from prometheus_client import generate_latest

from benchmarks import bench_model
from clickme.core import metrics


def _served_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """``httpx.get`` answers with this process's own /metrics."""
    answer = lambda *_args, **_kwargs: httpx.Response(200, content=generate_latest())  # noqa: E731
    monkeypatch.setattr(bench_model.httpx, "get", answer)


def test_the_cpu_by_thread_role_is_read_from_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    _served_metrics(monkeypatch)
    before = bench_model.thread_cpu_so_far_s("http://server")

    spun, release = threading.Event(), threading.Event()

    def spin() -> None:
        until = time.thread_time() + 0.05
        while time.thread_time() < until:
            pass
        spun.set()
        release.wait()  # alive until read: a thread counts in its role once seen

    thread = threading.Thread(target=spin, name=f"{metrics.REVEAL_THREAD_PREFIX}_7")
    thread.start()
    spun.wait()
    after = bench_model.thread_cpu_so_far_s("http://server")
    release.set()
    thread.join()
    assert set(after) == {"main", "reveal", "scorer", "other", "native"}
    assert after["reveal"] - before["reveal"] >= 0.045


def test_the_dnns_images_and_passes_are_read_from_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _served_metrics(monkeypatch)
    images, passes = bench_model.scored_so_far("http://server")
    metrics.record_batch([0.001, 0.002, 0.001])
    assert bench_model.scored_so_far("http://server") == (images + 3, passes + 1)
