"""Dynamic micro-batching: batch sizes, the wait bound, errors, threads and shutdown."""

import asyncio
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from clickme.scoring.batcher import AnswerRate, BatcherClosedError, MicroBatcher


def recording_doubler(sizes: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    def run_batch(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return batch * 2

    return run_batch


async def test_batches_fill_up_to_the_maximum_and_each_caller_gets_its_row() -> None:
    sizes: list[int] = []
    batcher = MicroBatcher(recording_doubler(sizes), max_batch=8, max_wait_ms=100)
    batcher.start()
    try:
        items = [np.full(3, i, dtype=np.int64) for i in range(20)]
        results = await asyncio.gather(*(batcher.submit(item) for item in items))
    finally:
        batcher.close()
    assert sizes == [8, 8, 4]
    for item, result in zip(items, results, strict=True):
        np.testing.assert_array_equal(result, item * 2)


async def test_a_lone_request_waits_at_most_the_wait_bound() -> None:
    batcher = MicroBatcher(recording_doubler([]), max_batch=8, max_wait_ms=60)
    batcher.start()
    try:
        started = time.perf_counter()
        await batcher.submit(np.ones(2))
        waited = time.perf_counter() - started
    finally:
        batcher.close()
    assert 0.055 <= waited < 0.5


async def test_no_wait_runs_at_once() -> None:
    batcher = MicroBatcher(recording_doubler([]), max_batch=8, max_wait_ms=0)
    batcher.start()
    try:
        started = time.perf_counter()
        await batcher.submit(np.ones(2))
        assert time.perf_counter() - started < 0.05
    finally:
        batcher.close()


async def test_errors_reach_every_caller_and_the_batcher_keeps_working() -> None:
    failing = True

    def run_batch(batch: np.ndarray) -> np.ndarray:
        if failing:
            raise ArithmeticError("model exploded")
        return batch + 1

    batcher = MicroBatcher(run_batch, max_batch=4, max_wait_ms=20)
    batcher.start()
    try:
        outcomes = await asyncio.gather(
            *(batcher.submit(np.zeros(1)) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, ArithmeticError) for o in outcomes)
        failing = False
        np.testing.assert_array_equal(await batcher.submit(np.zeros(1)), [1.0])
    finally:
        batcher.close()


async def test_a_wrong_number_of_rows_is_an_error_not_a_hang() -> None:
    batcher = MicroBatcher(lambda batch: batch[:1], max_batch=4, max_wait_ms=20)
    batcher.start()
    try:
        outcomes = await asyncio.gather(
            *(batcher.submit(np.zeros(1)) for _ in range(2)), return_exceptions=True
        )
    finally:
        batcher.close()
    assert all(isinstance(o, ValueError) for o in outcomes)


async def test_inference_runs_off_the_event_loop() -> None:
    threads: list[threading.Thread] = []

    def slow_batch(batch: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread())
        time.sleep(0.2)
        return batch

    batcher = MicroBatcher(slow_batch, max_batch=1, max_wait_ms=0)
    batcher.start()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await batcher.submit(np.zeros(1))
    finally:
        ticker.cancel()
        batcher.close()
    assert threads and threads[0] is not threading.current_thread()
    assert ticks >= 10  # the loop kept running during the 200 ms of inference


async def test_close_fails_waiting_requests_and_finishes_the_one_in_flight() -> None:
    running, release = threading.Event(), threading.Event()

    def blocking_batch(batch: np.ndarray) -> np.ndarray:
        running.set()
        release.wait(5)
        return batch

    batcher = MicroBatcher(blocking_batch, max_batch=1, max_wait_ms=0)
    batcher.start()
    in_flight = asyncio.create_task(batcher.submit(np.array([1])))
    await asyncio.to_thread(running.wait, 5)
    waiting = asyncio.create_task(batcher.submit(np.array([2])))
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(asyncio.to_thread(batcher.close))
    with pytest.raises(BatcherClosedError):
        await waiting
    release.set()
    await closing
    np.testing.assert_array_equal(await in_flight, [1])
    with pytest.raises(BatcherClosedError):
        await batcher.submit(np.array([3]))


async def test_submitting_before_start_is_refused() -> None:
    batcher = MicroBatcher(recording_doubler([]), max_batch=2, max_wait_ms=0)
    with pytest.raises(BatcherClosedError):
        await batcher.submit(np.zeros(1))
    batcher.close()
    with pytest.raises(BatcherClosedError):
        batcher.start()


async def test_a_caller_that_gave_up_is_skipped() -> None:
    sizes: list[int] = []
    batcher = MicroBatcher(recording_doubler(sizes), max_batch=8, max_wait_ms=80)
    batcher.start()
    try:
        impatient = asyncio.create_task(batcher.submit(np.zeros(1)))
        patient = asyncio.create_task(batcher.submit(np.ones(1)))
        await asyncio.sleep(0.01)
        impatient.cancel()
        np.testing.assert_array_equal(await patient, [2.0])
    finally:
        batcher.close()
    assert sizes == [1]


async def test_the_expected_wait_grows_with_the_queue_at_the_recent_rate() -> None:
    def slow(batch: np.ndarray) -> np.ndarray:
        time.sleep(0.02)  # 2 images per 20 ms: about 100 images/s
        return batch

    batcher = MicroBatcher(slow, max_batch=2, max_wait_ms=0)
    assert batcher.expected_wait_s() == 0.0  # nothing answered yet: no estimate, no refusal
    batcher.start()
    try:
        await asyncio.gather(*(batcher.submit(np.zeros(1)) for _ in range(20)))
        idle_wait = batcher.expected_wait_s()
        queued = [asyncio.create_task(batcher.submit(np.zeros(1))) for _ in range(40)]
        await asyncio.sleep(0)  # all submitted, most still waiting
        assert batcher.expected_wait_s() > 10 * idle_wait > 0
        await asyncio.gather(*queued)
    finally:
        batcher.close()


def test_items_sent_from_other_threads_share_a_batch_and_one_given_up_no_longer_waits() -> None:
    """``send`` from any thread (a reveal's store thread): each future gets its row; a cancelled
    one is left out of its batch and stops counting as waiting at once."""
    sizes: list[int] = []
    release = threading.Event()

    def held(batch: np.ndarray) -> np.ndarray:
        release.wait(5)
        return recording_doubler(sizes)(batch)

    batcher = MicroBatcher(held, max_batch=8, max_wait_ms=50)
    batcher.start()
    try:
        first = batcher.send(np.zeros(1))  # taken at once, held in its forward pass
        time.sleep(0.1)
        sent: list = []
        threads = [
            threading.Thread(target=lambda i=i: sent.append((i, batcher.send(np.full(1, i)))))
            for i in range(1, 5)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        futures = dict(sent)
        assert batcher._waiting == 5
        assert futures[4].cancel()
        assert batcher._waiting == 4
        release.set()
        assert first.result(5) == [0.0]
        assert [futures[i].result(5)[0] for i in (1, 2, 3)] == [2.0, 4.0, 6.0]
    finally:
        batcher.close()
    assert sizes == [1, 3]
    assert batcher._waiting == 0


def test_a_crowd_after_a_quiet_spell_is_not_taken_for_a_slow_scorer() -> None:
    rate = AnswerRate()
    for _ in range(5):  # one request now and then, each answered in about 10 ms
        rate.submitted(idle=True)
        time.sleep(0.01)
        rate.note()
        time.sleep(0.1)
    # 21 waiting at once: about 21 x 10 ms, not 21 at the 2.5 answers per second of the quiet.
    assert 0.2 <= rate.wait_s(21) < 1.0
