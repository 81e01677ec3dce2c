"""The reveal threads: work handed over with a Future (an Executor's submit) or without (post)."""

import threading
import time

import pytest

from clickme.core.work_threads import WorkThreads


def test_submit_gives_results_and_errors_as_an_executor_does() -> None:
    threads = WorkThreads(2, "work")
    try:
        assert threads.submit(lambda a, b: a + b, 2, b=3).result(timeout=5) == 5
        with pytest.raises(ZeroDivisionError):
            threads.submit(lambda: 1 / 0).result(timeout=5)
        names = {
            threads.submit(lambda: threading.current_thread().name).result() for _ in range(20)
        }
        assert names and names <= {"work_0", "work_1"}
    finally:
        threads.shutdown()


def test_work_cancelled_before_it_starts_never_runs() -> None:
    threads = WorkThreads(1, "work")
    busy, ran = threading.Event(), []
    threads.post(lambda: busy.wait(5))
    queued = threads.submit(ran.append, 1)
    assert queued.cancel()
    busy.set()
    threads.shutdown(wait=True)
    assert ran == []


def test_posted_work_that_fails_is_logged_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    threads = WorkThreads(1, "work")
    threads.post(lambda: 1 / 0)
    assert threads.submit(lambda: "still here").result(timeout=5) == "still here"
    threads.shutdown()
    assert "work handed to work threads failed" in caplog.text


def test_shutdown_finishes_the_work_queued_then_refuses_more() -> None:
    threads = WorkThreads(2, "work")
    done: list[int] = []
    for i in range(10):
        threads.post(lambda i=i: done.append(i))
    threads.shutdown(wait=True)
    assert sorted(done) == list(range(10))
    assert not any(t.name.startswith("work_") for t in threading.enumerate())
    with pytest.raises(RuntimeError):
        threads.post(lambda: None)


def test_one_thread_serves_work_that_comes_one_at_a_time() -> None:
    """At low load the thread idle last takes the next work (warm), no new one is started;
    under load up to ``count`` run at once and the rest waits its turn."""
    threads = WorkThreads(4, "work")
    try:
        names = []
        for _ in range(20):  # each comes once the one before is done and its thread idle again
            names.append(threads.submit(lambda: threading.current_thread().name).result())
            deadline = time.monotonic() + 5
            while not threads._idle and time.monotonic() < deadline:
                time.sleep(0.001)
        assert set(names) == {"work_0"}
        release, running = threading.Event(), threading.Semaphore(0)

        def hold() -> str:
            running.release()
            release.wait(5)
            return threading.current_thread().name

        held = [threads.submit(hold) for _ in range(6)]
        for _ in range(4):
            assert running.acquire(timeout=5)
        assert not running.acquire(timeout=0.1)  # the other two wait for a thread
        release.set()
        assert {f.result(timeout=5) for f in held} == {f"work_{i}" for i in range(4)}
    finally:
        threads.shutdown()
