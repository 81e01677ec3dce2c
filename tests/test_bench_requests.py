"""The request benchmark's split of a request's CPU by thread, from each thread's schedstat."""

import os
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from benchmarks.bench_load import backend_pids
from benchmarks.bench_model import schedstat_cpu_s
from benchmarks.bench_requests import (
    REVEALS_PER_ROUND,
    first_round_admitted,
    postgres_cpu_s,
    postgres_ms,
    sample_images,
    start_floor,
    thread_shares_ms,
)
from benchmarks.floor_app import RATE_KEY
from clickme.core.metrics import cpu_by_thread_s
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_TEST_URL


def test_a_request_is_split_into_the_event_loop_the_two_busiest_threads_and_the_rest() -> None:
    before = {100: 1.0, 101: 2.0, 102: 0.5, 103: 0.1}
    after = {100: 1.001, 101: 2.0002, 102: 0.503, 103: 0.1001, 104: 0.0004}  # 104: a new thread
    assert thread_shares_ms(100, before, after) == pytest.approx([1.0, 3.0, 0.4, 0.3])


def test_a_process_of_one_busy_thread_leaves_the_other_shares_empty() -> None:
    assert thread_shares_ms(7, {7: 0.5}, {7: 0.502}) == pytest.approx([2.0, 0.0, 0.0, 0.0])


def test_each_thread_is_read_apart_and_the_process_is_their_sum() -> None:
    spun, release, tids = threading.Event(), threading.Event(), []

    def spin() -> None:
        tids.append(threading.get_native_id())
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:
            pass
        spun.set()
        release.wait()

    before = cpu_by_thread_s(os.getpid())
    thread = threading.Thread(target=spin)
    thread.start()
    try:
        assert spun.wait(10)
        during = cpu_by_thread_s(os.getpid())
        total = schedstat_cpu_s(os.getpid())
    finally:
        release.set()
        thread.join()
    (tid,) = tids
    assert tid not in before and 0.05 <= during[tid] < 1.0
    assert threading.get_native_id() in during
    assert total >= sum(during.values())  # read just after, every thread still running
    assert cpu_by_thread_s(2**22 + 1) == {}  # no such process


def test_a_requests_postgresql_cpu_is_its_databases_backends_between_two_readings() -> None:
    engine = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with engine.connect() as busy, engine.connect() as idle:
            busy_pid, idle_pid = (
                c.scalar(sa.text("SELECT pg_backend_pid()")) for c in (busy, idle)
            )
            backends = backend_pids(engine)
            assert {busy_pid, idle_pid} <= set(backends)
            before = postgres_cpu_s(backends)
            busy.execute(sa.text("SELECT count(*) FROM generate_series(1, 3000000)"))
            after = postgres_cpu_s(backends)
        spent = {pid: after[pid] - before[pid] for pid in before}
        assert spent[busy_pid] > 0.05 and spent[idle_pid] < 0.005
        assert postgres_ms(before, after) == pytest.approx(sum(spent.values()) * 1000)
        assert postgres_ms(before, {**after, busy_pid: 0.0}) < 1  # a backend gone: not counted
    finally:
        engine.dispose()


def _api(answers: list[int]) -> tuple[httpx.Client, list[str]]:
    """A client of an API whose new rounds answer these statuses in turn (then 201)."""
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.endswith("/skip"):
            return httpx.Response(200, json={})
        status = answers.pop(0) if answers else 201
        body = {"round_id": 7} if status == 201 else {"error": {"code": "scorer_busy"}}
        return httpx.Response(status, json=body)

    return httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer)), paths


def test_the_first_round_is_asked_again_while_refused_busy_then_skipped() -> None:
    client, paths = _api([503, 503])
    first_round_admitted(client)
    assert paths == ["/api/rounds"] * 3 + ["/api/rounds/7/skip"]


def test_any_other_refusal_or_a_long_one_stops_the_benchmark() -> None:
    client, _ = _api([409])
    with pytest.raises(RuntimeError, match="409"):
        first_round_admitted(client)
    client, _ = _api([503] * 1000)
    with pytest.raises(RuntimeError, match="503"):
        first_round_admitted(client, timeout_s=0.3)


def test_the_floor_answers_a_round_after_each_requests_round_trips(redis_prefix: str) -> None:
    """``--floor``: the frameworkless app plays a round's requests, each after its PostgreSQL
    statement and its Redis commands (the rate key counts them), each request's CPU read."""
    with ExitStack() as stack, redis.Redis.from_url(REDIS_TEST_URL) as client:
        stack.callback(client.delete, RATE_KEY)
        floor = start_floor(stack, 0.0, POSTGRES_ADMIN_URL, REDIS_TEST_URL)
        client.delete(RATE_KEY)
        floor.play_round()
        assert int(client.get(RATE_KEY) or 0) == 3 + REVEALS_PER_ROUND  # start, its call, skip
    assert len(floor.cpu_ms["reveal"]) == REVEALS_PER_ROUND
    assert all(ms > 0 for kind in ("start", "reveal", "skip") for ms in floor.cpu_ms[kind])


def test_the_sample_option_needs_the_sample_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLICKME_IMAGENET_SAMPLE", str(tmp_path))
    assert sample_images() == tmp_path
    for missing in ("", str(tmp_path / "absent")):
        monkeypatch.setenv("CLICKME_IMAGENET_SAMPLE", missing)
        with pytest.raises(SystemExit, match="CLICKME_IMAGENET_SAMPLE"):
            sample_images()
