"""The background worker: one job at a time, a waiting key never queued twice, bounded."""

import logging
import threading

import pytest

from clickme.core.background import BackgroundWorker


def test_jobs_run_once_per_waiting_key_and_past_the_bound_are_dropped() -> None:
    worker = BackgroundWorker("test", max_waiting=2)
    started, release, ran = threading.Event(), threading.Event(), []

    def blocker() -> None:
        started.set()
        release.wait()

    assert worker.submit("blocker", blocker)
    started.wait()  # running, so no longer waiting
    assert worker.submit("a", lambda: ran.append("a"))
    assert not worker.submit("a", lambda: ran.append("a again"))  # "a" is waiting
    assert worker.submit("b", lambda: ran.append("b"))
    assert not worker.submit("c", lambda: ran.append("c"))  # two are waiting
    release.set()
    worker.close()  # finishes what is queued
    assert ran == ["a", "b"]


def test_a_key_can_be_queued_again_once_its_job_started() -> None:
    worker = BackgroundWorker("test", max_waiting=10)
    started, release, ran = threading.Event(), threading.Event(), []

    def first() -> None:
        started.set()
        release.wait()
        ran.append(1)

    assert worker.submit("key", first)
    started.wait()
    assert worker.submit("key", lambda: ran.append(2))  # a later trigger is not lost
    release.set()
    worker.close()
    assert ran == [1, 2]


def test_a_failing_job_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    worker = BackgroundWorker("test", max_waiting=10)
    ran = []
    with caplog.at_level(logging.ERROR):
        worker.submit("bad", lambda: 1 / 0)
        worker.submit("good", lambda: ran.append("good"))
        worker.close()
    assert ran == ["good"]
    assert "background job 'bad' failed" in caplog.text
