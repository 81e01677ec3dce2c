"""The process's CPU by thread role (``clickme_thread_cpu_seconds_total``): each thread counted
in its role, from its own schedstat, never falling when threads end."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from clickme.core import metrics
from clickme.core.metrics import ThreadCpuCollector, thread_role
from tests.core.test_ops import metric


def _spin(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def _run_named(name: str, seconds: float) -> None:
    thread = threading.Thread(target=_spin, args=(seconds,), name=name)
    thread.start()
    thread.join()


def test_each_thread_has_its_role_by_the_name_python_gave_it() -> None:
    roles = {}

    def note() -> None:
        roles[threading.current_thread().name] = thread_role(threading.current_thread())

    for name in ("reveal_3", metrics.SCORER_THREAD_NAME, "export-jobs"):
        thread = threading.Thread(target=note, name=name)
        thread.start()
        thread.join()
    assert roles == {
        "reveal_3": "reveal",
        metrics.SCORER_THREAD_NAME: "scorer",
        "export-jobs": "other",
    }
    assert thread_role(threading.main_thread()) == "main"
    assert thread_role(None) == "native"


def test_a_threads_cpu_counts_in_its_role_and_stays_once_it_ends() -> None:
    collector = ThreadCpuCollector()
    before = collector.seconds_by_role()
    done = threading.Event()
    worker = threading.Thread(target=lambda: (_spin(0.08), done.wait()), name="reveal_9")
    worker.start()
    while worker.is_alive() and not done.is_set():
        time.sleep(0.01)
        if collector.seconds_by_role()["reveal"] - before["reveal"] >= 0.08:
            break
    running = collector.seconds_by_role()
    done.set()
    worker.join()
    ended = collector.seconds_by_role()
    assert running["reveal"] - before["reveal"] == pytest.approx(0.08, abs=0.03)
    assert running["other"] - before["other"] < 0.02  # not counted twice
    assert ended["reveal"] >= running["reveal"]


def test_a_thread_id_taken_by_a_new_thread_keeps_the_ended_threads_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter([{42: 5.0}, {42: 0.5}])  # thread 42 ended; a new one got its id
    monkeypatch.setattr(metrics, "_cpu_by_thread_s", lambda: next(readings))
    collector = ThreadCpuCollector()
    assert collector.seconds_by_role()["native"] == 5.0
    assert collector.seconds_by_role()["native"] == 5.5


def test_metrics_serve_the_cpu_by_role(client: TestClient) -> None:
    before = metric(client, "clickme_thread_cpu_seconds_total", role="other")
    _run_named("some-job", 0.05)
    after = metric(client, "clickme_thread_cpu_seconds_total", role="other")
    assert after - before == pytest.approx(0.05, abs=0.03)
    assert metric(client, "clickme_thread_cpu_seconds_total", role="main") > 0
