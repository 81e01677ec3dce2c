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
    spun, release = threading.Event(), threading.Event()

    def work() -> None:
        _spin(0.08)
        spun.set()
        release.wait()  # alive until read: a thread counts in its role once seen

    worker = threading.Thread(target=work, name="reveal_9")
    worker.start()
    spun.wait()
    running = collector.seconds_by_role()
    release.set()
    worker.join()
    ended = collector.seconds_by_role()
    assert running["reveal"] - before["reveal"] >= 0.07
    assert ended["reveal"] >= running["reveal"]


def test_other_is_the_rest_of_the_process_and_never_falls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads read one by one, each in its role (one Python does not know: native); the rest
    of the process's CPU (threads gone before they were read) is ``other``."""
    main = threading.main_thread().native_id
    readings = iter([({main: 1.0, 7: 2.0}, 3.5), ({main: 1.5}, 4.0), ({main: 1.6}, 4.0)])
    current: tuple[dict[int, float], float] = ({}, 0.0)

    def read() -> dict[int, float]:
        nonlocal current
        current = next(readings)
        return current[0]

    monkeypatch.setattr(metrics, "cpu_by_thread_s", read)
    monkeypatch.setattr(metrics.time, "process_time", lambda: current[1])
    collector = ThreadCpuCollector()
    first = collector.seconds_by_role()
    assert (first["main"], first["native"], first["other"]) == (1.0, 2.0, 0.5)
    second = collector.seconds_by_role()  # thread 7 ended: its 2 s kept
    assert (second["main"], second["native"], second["other"]) == (1.5, 2.0, 0.5)
    third = collector.seconds_by_role()  # the rest would fall to 0.4: it stays
    assert (third["main"], third["other"]) == (1.6, 0.5)


def test_a_thread_id_taken_by_a_new_thread_keeps_the_ended_threads_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter([{42: 5.0}, {42: 0.5}])  # thread 42 ended; a new one got its id
    monkeypatch.setattr(metrics, "cpu_by_thread_s", lambda: next(readings))
    collector = ThreadCpuCollector()
    assert collector.seconds_by_role()["native"] == 5.0
    assert collector.seconds_by_role()["native"] == 5.5


def test_metrics_serve_the_cpu_by_role(client: TestClient) -> None:
    before = metric(client, "clickme_thread_cpu_seconds_total", role="other")
    _run_named("some-job", 0.05)  # gone before the next reading: in the rest
    after = metric(client, "clickme_thread_cpu_seconds_total", role="other")
    assert after - before >= 0.045
    assert metric(client, "clickme_thread_cpu_seconds_total", role="main") > 0
