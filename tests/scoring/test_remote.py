"""Scoring through Redis: real `clickme worker` processes, the real Redis, a private one restarted.

Each test has its own key prefix (deleted afterwards); workers run the cached ONNX export.
"""

import asyncio
import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from clickme.app import build_runtime, create_app
from clickme.cli import app
from clickme.core.config import Settings
from clickme.core.migrate import upgrade
from clickme.game.models import PointBatch
from clickme.scoring import worker as worker_module
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.remote import (
    UNREACHABLE,
    RedisScorer,
    ScoreRequest,
    ScorerFailedError,
    ViewAnswer,
    decode_answer,
    encode_answer,
    open_scorer,
    stream_key,
)
from clickme.scoring.reveal import (
    RevealRule,
    RevealView,
    compose,
    prepare_image,
    render_mask,
    revealed_fraction,
)
from clickme.scoring.scorer import OnnxScorer, Scorer, ScorerBusyError
from clickme.scoring.worker import ScoringWorker, lanes_and_threads
from tests.conftest import REDIS_TEST_URL, _create_postgres_database, _drop_postgres_database
from tests.live_server import _server_env, clickme_command, free_port, serving
from tests.players.painting import crop_box, grid, human_times, new_player, start
from tests.redis_server import private_redis

START_TIMEOUT_S = 120.0
RULE = RevealRule(radius=0.08, softness=0.5, background="blur", blur_sigma=8.0)
SAMPLE_IMAGES = 4
STATS_LINE = re.compile(r"stopped: answered=(\d+) batches=(\d+) taken_over=(\d+) expired=(\d+)")
BY_LANE = re.compile(r"by lane ([\d+]+)")


@dataclass(frozen=True)
class Queue:
    """One test's corner of a Redis: its URL and key prefix."""

    url: str
    prefix: str

    def settings(self, models_cache_dir: Path, **overrides: object) -> Settings:
        values = {
            "data_dir": models_cache_dir,
            "redis_url": self.url,
            "redis_key_prefix": self.prefix,
        }
        return Settings(**{**values, "scorer_timeout_ms": 20_000, **overrides})

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stream(self) -> str:
        return stream_key(self.prefix, DEFAULT_MODEL)


@pytest.fixture
def queue(redis_prefix: str) -> Queue:
    return Queue(REDIS_TEST_URL, redis_prefix)


@pytest.fixture(scope="module")
def images(demo_photos: list[Path]) -> np.ndarray:
    """What the DNN sees in play: real photos, partly revealed over their blurred selves."""
    rng = np.random.default_rng(0)
    composed = []
    for path in demo_photos[:SAMPLE_IMAGES]:
        prepared = prepare_image(path, RULE)
        points = rng.uniform(0, 1, size=(60, 2)) * (prepared.width, prepared.height)
        composed.append(compose(prepared, render_mask(points, prepared, RULE)))
    return np.stack(composed)


@pytest.fixture(scope="module")
def expected(images: np.ndarray, shared_scorer: Scorer) -> np.ndarray:
    """The in-process scorer's answers (its fixture also makes the ONNX export workers load)."""
    return shared_scorer.classify_batch_sync(images)


def assert_same_answers(answers: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(answers, expected, rtol=0, atol=1e-6)
    assert (answers.argmax(axis=1) == expected.argmax(axis=1)).all()


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    queue: Queue

    @property
    def consumer(self) -> str:
        return f"{socket.gethostname()}-{self.process.pid}"

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> dict[str, int]:
        """SIGTERM, a clean exit, and the counts its last log line reports."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0, self.log()
        match = STATS_LINE.search(self.log())
        assert match, self.log()
        counts = map(int, match.groups())
        return dict(zip(("answered", "batches", "taken_over", "expired"), counts, strict=True))

    def wait_until_ready(self) -> "WorkerProcess":
        wait_for(self.is_waiting_for_work, "the worker to start")
        return self

    def is_waiting_for_work(self) -> bool:
        """Its connection is blocked in XREADGROUP (so it has loaded the model)."""
        assert self.process.poll() is None, self.log()
        with self.queue.client() as client:
            return any(
                entry["name"] == f"clickme-worker:{self.consumer}" and "b" in entry["flags"]
                for entry in client.client_list()
            )


def wait_for(
    condition: Callable[[], object], what: str, timeout_s: float = START_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def running_worker(
    queue: Queue, models_cache_dir: Path, log_path: Path, *args: str, **env: str
) -> Iterator[WorkerProcess]:
    """`clickme worker` (one CPU thread) on the queue, launched; killed at the end."""
    environment = _server_env(models_cache_dir) | {
        "CLICKME_REDIS_URL": queue.url,
        "CLICKME_REDIS_KEY_PREFIX": queue.prefix,
        "CLICKME_WORKER_CLAIM_TIMEOUT_MS": "5000",  # well over a forward pass on a busy CPU
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            clickme_command("worker", "--threads", "1", *args),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield WorkerProcess(process, log_path, queue)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def start_worker(
    queue: Queue, models_cache_dir: Path, tmp_path: Path, expected: np.ndarray
) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts a worker (on the test's queue unless told; after the ONNX export exists), by
    default waiting until it waits for work; all are killed at the end."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(
            target: Queue = queue, *args: str, ready: bool = True, **env: str
        ) -> WorkerProcess:
            log_path = tmp_path / f"worker-{next(numbers)}.log"
            running = running_worker(target, models_cache_dir, log_path, *args, **env)
            worker = stack.enter_context(running)
            return worker.wait_until_ready() if ready else worker

        yield start


@contextmanager
def remote_scorer(settings: Settings) -> Iterator[RedisScorer]:
    scorer = RedisScorer(settings, get_model_spec(settings.model))
    scorer.start()
    try:
        yield scorer
    finally:
        scorer.close()


async def classify_each(scorer: RedisScorer, images: np.ndarray) -> np.ndarray:
    return np.stack(await asyncio.gather(*(scorer.classify(image) for image in images)))


class Recording:
    """A stand-in model: class ``v`` for an image filled with ``v``; it records batch sizes."""

    spec = get_model_spec(DEFAULT_MODEL)

    def __init__(self, failure: Exception | None = None) -> None:
        self.batches: list[int] = []
        self.failure = failure

    def classify_batch_sync(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(len(images))
        if self.failure is not None:
            raise self.failure
        return np.eye(1000, dtype=np.float32)[images[:, 0, 0, 0]]


@contextmanager
def worker_thread(settings: Settings, scorer: Recording) -> Iterator[ScoringWorker]:
    """A ScoringWorker serving in a thread of this process; stopped at the end."""
    worker = ScoringWorker(settings, scorer, f"thread-{uuid.uuid4().hex[:8]}")
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join()


def filled(value: int) -> np.ndarray:
    return np.full((224, 224, 3), value, dtype=np.uint8)


async def test_a_worker_gathers_a_batch_for_its_short_wait_and_answers_each_request(
    queue: Queue, tmp_path: Path
) -> None:
    settings = queue.settings(tmp_path, batch_max_size=4, batch_max_wait_ms=300)
    model = Recording()
    with remote_scorer(settings) as scorer, worker_thread(settings, model) as worker:

        async def late(value: int) -> np.ndarray:
            await asyncio.sleep(0.02 * value)
            return await scorer.classify(filled(value))

        answers = await asyncio.gather(*(late(value) for value in range(1, 5)))
    assert [int(answer.argmax()) for answer in answers] == [1, 2, 3, 4]
    assert model.batches == [4]
    assert worker.stats.answered == 4


async def test_a_failed_forward_pass_is_answered_as_a_failure(queue: Queue, tmp_path: Path) -> None:
    settings = queue.settings(tmp_path)
    model = Recording(failure=RuntimeError("out of memory"))
    with queue.client() as client:
        client.xadd(queue.stream(), {"id": b"not an image"})
    with remote_scorer(settings) as scorer, worker_thread(settings, model):
        with pytest.raises(ScorerFailedError, match="RuntimeError: out of memory"):
            await scorer.classify(filled(1))
        with queue.client() as client:
            assert client.xlen(queue.stream()) == 0  # the malformed entry is dropped too
    assert model.batches == [1]


async def test_a_worker_of_two_lanes_scores_on_both_as_this_process_would(
    queue: Queue,
    models_cache_dir: Path,
    start_worker: Callable[..., WorkerProcess],
    images: np.ndarray,
    expected: np.ndarray,
) -> None:
    worker = start_worker(queue, "--lanes", "2")
    with remote_scorer(queue.settings(models_cache_dir)) as scorer:
        crowd = np.concatenate([images] * 8)  # queued at once: both lanes take batches
        assert_same_answers(await classify_each(scorer, crowd), np.concatenate([expected] * 8))
    answered = worker.stop()["answered"]
    by_lane = BY_LANE.search(worker.log())
    assert by_lane, worker.log()
    lanes = [int(count) for count in by_lane[1].split("+")]
    assert len(lanes) == 2 and min(lanes) > 0 and sum(lanes) == answered == len(crowd)


def test_a_worker_has_a_lane_per_cpu_thread_and_one_on_a_device() -> None:
    assert lanes_and_threads(Settings(scorer_threads=4)) == (4, 1)
    assert lanes_and_threads(Settings(scorer_threads=4, worker_lanes=2)) == (2, 2)
    assert lanes_and_threads(Settings(scorer_threads=4, scorer_device="cuda")) == (1, 4)
    assert lanes_and_threads(Settings(scorer_threads=0)) == (os.cpu_count() or 1, 1)


async def test_a_worker_answers_as_this_process_would(
    queue: Queue,
    models_cache_dir: Path,
    start_worker: Callable[..., WorkerProcess],
    images: np.ndarray,
    expected: np.ndarray,
) -> None:
    metrics_port = free_port()
    worker = start_worker(queue, "--metrics-port", str(metrics_port))
    with remote_scorer(queue.settings(models_cache_dir)) as scorer:
        assert_same_answers(await classify_each(scorer, images), expected)
        assert_same_answers(await asyncio.to_thread(scorer.classify_batch_sync, images), expected)
        with pytest.raises(RuntimeError, match="would block the loop"):
            scorer.classify_batch_sync(images)  # its answers are read on this loop
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert f"clickme_inference_batch_size_sum {2 * len(images)}.0" in metrics
    assert worker.stop()["answered"] == 2 * len(images)
    with queue.client() as client:
        assert client.xlen(queue.stream()) == 0  # answered entries are deleted
        assert client.xinfo_consumers(queue.stream(), "workers") == []  # it left the group


async def test_two_workers_share_the_load(
    queue: Queue,
    models_cache_dir: Path,
    start_worker: Callable[..., WorkerProcess],
    images: np.ndarray,
    expected: np.ndarray,
) -> None:
    workers = [start_worker(ready=False), start_worker(ready=False)]
    for worker in workers:
        worker.wait_until_ready()
    many = np.concatenate([images] * 8)
    with remote_scorer(queue.settings(models_cache_dir)) as scorer:
        assert_same_answers(await classify_each(scorer, many), np.concatenate([expected] * 8))
    answered = [worker.stop()["answered"] for worker in workers]
    assert sum(answered) == len(many)
    assert min(answered) > 0, answered


async def test_what_a_killed_worker_held_is_answered_by_another(
    queue: Queue,
    models_cache_dir: Path,
    start_worker: Callable[..., WorkerProcess],
    images: np.ndarray,
    expected: np.ndarray,
) -> None:
    doomed = start_worker(ready=False)
    rescuer = start_worker(queue, ready=False, CLICKME_WORKER_CLAIM_TIMEOUT_MS="200")
    for worker in (doomed, rescuer):
        worker.wait_until_ready()
    load = 10
    with remote_scorer(queue.settings(models_cache_dir)) as scorer, queue.client() as client:

        def held_by_the_doomed() -> int:
            pending = client.xpending(queue.stream(), "workers")
            owners = {c["name"].decode(): c["pending"] for c in pending["consumers"]}
            return owners.get(doomed.consumer, 0)

        answers = asyncio.gather(*(scorer.classify(image) for image in [*images] * load))
        deadline = time.monotonic() + 20
        while True:  # frozen mid-load: usually in a forward pass, holding requests
            doomed.process.send_signal(signal.SIGSTOP)
            if held_by_the_doomed():
                break
            assert time.monotonic() < deadline, "the doomed worker never held a request"
            doomed.process.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.01)
        doomed.process.kill()
        doomed.process.wait()
        assert_same_answers(np.stack(await answers), np.concatenate([expected] * load))
        stats = rescuer.stop()
        assert client.xpending(queue.stream(), "workers")["pending"] == 0
    assert stats["taken_over"] >= 1


def test_a_scorer_not_started_refuses_at_once_and_closes(
    models_cache_dir: Path, queue: Queue
) -> None:
    scorer = RedisScorer(queue.settings(models_cache_dir), get_model_spec(DEFAULT_MODEL))
    with pytest.raises(ScorerBusyError, match="cannot be reached"):
        scorer.classify_batch_sync(filled(1)[None])
    scorer.close()


def test_an_idle_reader_keeps_its_channel_and_closes_at_once(
    models_cache_dir: Path, queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    """While no answer comes, the channel's connection waits with no timeout (redis-py's
    default, 5 s, would drop the channel: answers lost while it subscribes again); close
    stops its loop at once."""
    with remote_scorer(queue.settings(models_cache_dir)) as scorer, queue.client() as client:
        time.sleep(5.5)  # the channel waits for its next message
        assert scorer.answers.listening.is_set()
        assert client.pubsub_numsub(scorer.channel) == [(scorer.channel, 1)]
        own_loop = scorer.answers._own_loop
        assert own_loop is not None and own_loop.is_alive()  # no loop runs in this test
        started = time.monotonic()
        scorer.close()
        assert time.monotonic() - started < 1
        assert not own_loop.is_alive()
        unsubscribed = [(scorer.channel, 0)]
        wait_for(lambda: client.pubsub_numsub(scorer.channel) == unsubscribed, "the channel", 2)
    assert "lost the scoring answers channel" not in caplog.text


class SilencingProxy:
    """A TCP proxy to Redis that can go silent towards subscribers: what Redis sends to a
    connection that subscribed is then dropped, its socket kept open (a network partition
    neither end sees), while the other connections go on."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
                self.sockets += [client, server]
                subscriber = threading.Event()
                for from_redis in (False, True):
                    pair = (server, client) if from_redis else (client, server)
                    pump = partial(self._pump, *pair, subscriber, from_redis)
                    threading.Thread(target=pump, daemon=True).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        subscriber: threading.Event,
        from_redis: bool,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not from_redis and b"SUBSCRIBE" in data:
                    subscriber.set()
                if not (from_redis and subscriber.is_set() and self.silent.is_set()):
                    sink.sendall(data)


def test_a_reader_cut_off_unseen_is_stopped_by_close(models_cache_dir: Path, queue: Queue) -> None:
    """Redis out of reach without the connection's end seen (its answers no longer arrive):
    close still returns at once, its connection cut."""
    redis_address = redis.Redis.from_url(queue.url).get_connection_kwargs()
    proxy = SilencingProxy((redis_address["host"], redis_address["port"]))
    try:
        with remote_scorer(Queue(proxy.url, queue.prefix).settings(models_cache_dir)) as scorer:
            proxy.silent.set()
            started = time.monotonic()
            scorer.close()
            assert time.monotonic() - started < 1
            own_loop = scorer.answers._own_loop
            assert own_loop is not None and not own_loop.is_alive()
    finally:
        proxy.close()


async def test_without_a_worker_requests_fail_in_time_and_are_dropped_later(
    queue: Queue, tmp_path: Path
) -> None:
    settings = queue.settings(tmp_path, scorer_timeout_ms=300)
    with remote_scorer(settings) as scorer:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await scorer.classify(filled(1))
        with pytest.raises(ScorerBusyError, match="busy"):
            await asyncio.to_thread(scorer.classify_batch_sync, np.stack([filled(2), filled(3)]))
        assert time.monotonic() - started < 3
    model = Recording()
    with queue.client() as client:
        assert client.xlen(queue.stream()) == 3
        with worker_thread(settings, model) as worker:  # its group starts at the stream's start
            wait_for(lambda: client.xlen(queue.stream()) == 0, "the expired requests to go", 20)
    assert (worker.stats.expired, worker.stats.answered, model.batches) == (3, 0, [])


async def test_redis_out_of_reach_is_a_clear_error_at_once(
    models_cache_dir: Path, images: np.ndarray
) -> None:
    closed = Queue(f"redis://127.0.0.1:{free_port()}/0", "test-closed")
    with remote_scorer(closed.settings(models_cache_dir)) as scorer:
        started = time.monotonic()
        with pytest.raises(ScorerBusyError) as raised:
            await scorer.classify(images[0])
        assert raised.value.status == 503 and raised.value.message == UNREACHABLE
        with pytest.raises(ScorerBusyError, match="cannot be reached"):
            await asyncio.to_thread(scorer.classify_batch_sync, images)
        assert time.monotonic() - started < 1


async def test_scoring_comes_back_after_redis_restarts(
    models_cache_dir: Path,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    images: np.ndarray,
    expected: np.ndarray,
) -> None:
    port = free_port()
    restarted = Queue(f"redis://127.0.0.1:{port}/0", "test-restart")
    log_path = tmp_path / "redis.log"
    with private_redis(port, log_path):
        worker = start_worker(restarted)
        scorer = RedisScorer(restarted.settings(models_cache_dir), get_model_spec(DEFAULT_MODEL))
        scorer.start()
        assert_same_answers(await classify_each(scorer, images[:1]), expected[:1])
    try:
        with pytest.raises(ScorerBusyError, match="cannot be reached"):
            await scorer.classify(images[0])
        with private_redis(port, log_path):
            answer = await asyncio.to_thread(answered_again, scorer, images[1])
            assert_same_answers(answer[None], expected[1:2])
            stats = worker.stop()
    finally:
        scorer.close()
    assert stats["answered"] >= 2
    assert "Redis is out of reach" in worker.log() and "Redis is back" in worker.log()


def answered_again(scorer: RedisScorer, image: np.ndarray, timeout_s: float = 30) -> np.ndarray:
    """The first answer after the outage (clear refusals until then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return scorer.classify_batch_sync(image[None])[0]
        except ScorerBusyError:
            assert time.monotonic() < deadline, "scoring did not come back"
            time.sleep(0.2)


def test_with_redis_the_api_process_loads_no_model(models_cache_dir: Path, queue: Queue) -> None:
    settings = queue.settings(models_cache_dir)
    runtime = build_runtime(settings)
    try:
        assert isinstance(runtime.scorer, RedisScorer)
        assert isinstance(runtime.scorer_for("efficientnet-lite2"), RedisScorer)
    finally:
        runtime.close()
    inprocess = queue.settings(models_cache_dir, inprocess_scoring=True)
    scorer = open_scorer(inprocess, get_model_spec(DEFAULT_MODEL))
    try:
        assert isinstance(scorer, OnnxScorer)
    finally:
        scorer.close()


async def test_in_the_app_every_scorer_reads_its_answers_on_the_apps_loop(
    models_cache_dir: Path, queue: Queue
) -> None:
    """Built on the app's event loop (in its lifespan), the runtime's scorers read their answers
    there: the default one, and one a reveal thread opens later; none runs a loop of its own."""
    runtime = build_runtime(queue.settings(models_cache_dir))
    try:
        other = await asyncio.to_thread(runtime.scorer_for, "efficientnet-lite2")
        for scorer in (runtime.scorer, other):
            assert isinstance(scorer, RedisScorer)
            assert scorer.answers.loop is asyncio.get_running_loop() is runtime.loop
            assert scorer.answers._own_loop is None and scorer.answers.listening.is_set()
    finally:
        await asyncio.to_thread(runtime.close)
    assert not other.answers.listening.is_set()


@pytest.mark.parametrize(
    ("redis_url", "message"),
    [(REDIS_TEST_URL, "the DNN partner is busy, try again"), ("closed", UNREACHABLE)],
    ids=["no-worker", "no-redis"],
)
def test_a_reveal_nobody_can_score_is_a_503_the_game_shows(
    game_settings: Settings, queue: Queue, redis_url: str, message: str
) -> None:
    """The scorer's Redis is the test's, or out of reach (the app's own store stays up)."""
    settings = game_settings.model_copy(
        update={
            "redis_url": REDIS_TEST_URL,
            "redis_key_prefix": queue.prefix,
            "scorer_timeout_ms": 300,
        }
    )
    url = f"redis://127.0.0.1:{free_port()}/0" if redis_url == "closed" else redis_url
    scorer_settings = settings.model_copy(update={"redis_url": url})
    with (
        remote_scorer(scorer_settings) as scorer,
        TestClient(create_app(settings, scorer)) as client,
    ):
        new_player(client)
        round_ = start(client)
        started = time.monotonic()
        response = client.post(
            f"/api/rounds/{round_['round_id']}/points",
            json={"seq": 1, "points": [[10, 10, 0]], "pointer_type": "mouse"},
        )
        assert time.monotonic() - started < 3
        assert not scorer._waiting  # the reveal gave up: its request is no longer waited for
    assert response.status_code == 503
    assert response.json()["error"] == {"code": "scorer_busy", "message": message}


def full_share(client: TestClient, round_id: int, points: list[list[float]]) -> float:
    """The share of the crop every point so far reveals, drawn at once (as the API would)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    facts = runtime.rounds.get(round_id)
    prepared = runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)
    xy = np.asarray([[x, y] for x, y, _t in points], dtype=np.float32)
    return revealed_fraction(render_mask(xy, prepared, facts.rule))


@pytest.mark.parametrize("worker_reports", [True, False], ids=["share-reported", "older-worker"])
def test_with_workers_the_api_draws_nothing_and_answers_the_share_revealed(
    game_settings: Settings,
    queue: Queue,
    shared_scorer: Scorer,
    monkeypatch: pytest.MonkeyPatch,
    worker_reports: bool,
) -> None:
    """The worker draws each view and reports the share it reveals: the API keeps only the
    points (no mask), and answers the same share a whole render gives. A worker that does not
    report it (an older one, mid-upgrade) still gets the same answers: the API draws then."""
    settings = game_settings.model_copy(
        update={"redis_url": REDIS_TEST_URL, "redis_key_prefix": queue.prefix}
    )
    if not worker_reports:
        plain = worker_module.encode_answer

        def without_share(request_id: bytes, probs=None, error="", revealed=None):  # type: ignore[no-untyped-def]
            return plain(request_id, probs, error)

        monkeypatch.setattr(worker_module, "encode_answer", without_share)
    with (
        worker_thread(settings, shared_scorer),  # type: ignore[arg-type]
        remote_scorer(settings.model_copy(update={"scorer_timeout_ms": 20_000})) as scorer,
        TestClient(create_app(settings, scorer)) as client,
    ):
        new_player(client)
        round_id = start(client)["round_id"]
        sent: list[list[float]] = []
        for seq in range(1, 4):
            batch = [[40.0 * seq + 3 * k, 30.0 * seq + 2 * k, 300 * seq + 10 * k] for k in range(5)]
            sent += batch
            body = {"seq": seq, "points": batch, "pointer_type": "mouse"}
            response = client.post(f"/api/rounds/{round_id}/points", json=body)
            assert response.status_code == 200, response.text
            reveal = response.json()
            assert len(reveal["guesses"]) == 5
            expected = full_share(client, round_id, sent)
            assert reveal["revealed_fraction"] == pytest.approx(expected, abs=1e-12)
            if reveal["state"] != "playing":
                break
            live = client.app.state.runtime.masks.get(round_id)  # type: ignore[attr-defined]
            assert live.drawn is None and len(live.points) == len(sent)


def test_a_view_asks_for_its_share_and_the_answer_carries_it_exactly() -> None:
    """On the wire: a view from this API asks for the share; the answer carries it as float64
    (exactly what the API computes); a request that does not ask (an older API) is answered
    without it, as before."""
    view = RevealView("photo.png", RULE, np.array([[10.5, 20.25]], dtype=np.float32))
    fields = ScoreRequest(b"r" * 16, b"reply", 0, view).fields()
    wire = {key.encode(): value if isinstance(value, bytes) else str(value).encode()
            for key, value in fields.items()}  # fmt: skip
    assert ScoreRequest.parse(wire).reports_share
    del wire[b"share"]
    assert not ScoreRequest.parse(wire).reports_share
    probs = np.linspace(0, 1, 1000, dtype=np.float32)
    request_id, answer = decode_answer(encode_answer(b"r" * 16, probs, revealed=1 / 3))
    assert request_id == b"r" * 16 and isinstance(answer, ViewAnswer)
    assert answer.revealed == 1 / 3 and np.array_equal(answer.probs, probs)
    _, plain = decode_answer(encode_answer(b"r" * 16, probs))
    assert isinstance(plain, np.ndarray) and np.array_equal(plain, probs)


PLAYERS = 6
ROUNDS_EACH = 2
BATCHES_PER_ROUND = 4


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of its own, migrated, for API processes to share."""
    name = f"clickme_remote_{os.getpid()}"
    url = _create_postgres_database(name)
    upgrade(url)
    yield url
    _drop_postgres_database(name)


def batches_of(round_: dict) -> list[list[list[float]]]:
    """A stroke over most of what the DNN sees, in BATCHES_PER_ROUND batches."""
    points = grid(crop_box(round_, 0.1, 0.1, 0.8), round_["brush"]["radius_px"])[:120]
    times = human_times(len(points), seed=round_["round_id"])
    stroke = [[x, y, t] for (x, y), t in zip(points, times, strict=True)]
    size = -(-len(stroke) // BATCHES_PER_ROUND)
    return [stroke[first : first + size] for first in range(0, len(stroke), size)]


async def play(player: int, servers: tuple[str, str]) -> dict[int, tuple[int, int]]:
    """The player's rounds, every request on the other API process than the one before; for
    each round: the points sent and the reveals answered."""
    played = {}
    turn = itertools.cycle(servers[player % 2 :] + servers[: player % 2])
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{next(turn)}/api/players", json={"consent": True})
        assert response.status_code == 201, response.text
        for _ in range(ROUNDS_EACH):
            viewport = {"viewport_width": 1280, "viewport_height": 800}
            response = await client.post(f"{next(turn)}/api/rounds", json=viewport)
            assert response.status_code == 201, response.text
            round_ = response.json()
            round_id, sent, answered, state = round_["round_id"], 0, 0, "playing"
            for seq, points in enumerate(batches_of(round_), start=1):
                body = {"seq": seq, "points": points, "pointer_type": "mouse"}
                response = await client.post(
                    f"{next(turn)}/api/rounds/{round_id}/points", json=body
                )
                assert response.status_code == 200, response.text
                reveal = response.json()
                assert len(reveal["guesses"]) == 5 and not reveal["duplicate"]
                sent, answered, state = sent + len(points), answered + 1, reveal["state"]
                if state != "playing":
                    break
            if state == "playing":
                response = await client.post(f"{next(turn)}/api/rounds/{round_id}/skip")
                assert response.status_code == 200, response.text
            played[round_id] = (sent, answered)
    return played


async def test_players_on_two_api_processes_are_scored_by_one_worker(
    queue: Queue,
    postgres_url: str,
    models_cache_dir: Path,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = _server_env(data_dir) | {
        "CLICKME_DATABASE_URL": postgres_url,
        "CLICKME_REDIS_URL": queue.url,
        "CLICKME_REDIS_KEY_PREFIX": queue.prefix,
        "CLICKME_SECRET_KEY": "remote-scoring-test-" + "x" * 32,
        "CLICKME_SCORER_TIMEOUT_MS": "20000",
        # Six players queue past the default 500 ms for a DNN at 40 ms an image (a slow
        # machine): new rounds would be refused (503), which this test is not about.
        "CLICKME_ROUND_START_MAX_WAIT_MS": "0",
        "CLICKME_RATE_ROUNDS_PER_MIN": "10000",
        "CLICKME_RATE_PLAYERS_PER_MIN": "10000",
    }
    import_demo = clickme_command("images", "import-demo")
    subprocess.run(import_demo, env=env, check=True, capture_output=True)
    # The worker composes what the model sees from the photos: it shares the data dir (and
    # its models folder, the session's ONNX export).
    (models_cache_dir / "models").mkdir(exist_ok=True)
    (data_dir / "models").symlink_to(models_cache_dir / "models", target_is_directory=True)
    # it loads the model while the API processes start
    worker = start_worker(ready=False, CLICKME_DATA_DIR=str(data_dir))
    with (
        serving(env, tmp_path / "api-a.log", "demo") as first,
        serving(env, tmp_path / "api-b.log", "demo") as second,
    ):
        worker.wait_until_ready()
        players = [play(player, (first, second)) for player in range(PLAYERS)]
        played = {k: v for rounds in await asyncio.gather(*players) for k, v in rounds.items()}
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            stored = dict(
                connection.execute(
                    sa.select(PointBatch.round_id, sa.func.sum(PointBatch.n_points)).group_by(
                        PointBatch.round_id
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert len(played) == PLAYERS * ROUNDS_EACH
    assert stored == {round_id: sent for round_id, (sent, _) in played.items()}
    assert worker.stop()["answered"] == sum(answered for _, answered in played.values())


@pytest.mark.parametrize(
    ("env", "args", "refusal"),
    [
        ({}, [], "CLICKME_REDIS_URL"),
        ({"CLICKME_REDIS_URL": REDIS_TEST_URL}, ["--model", "alexnet"], "no registered model"),
        ({"CLICKME_REDIS_URL": REDIS_TEST_URL}, ["--backend", "tensorflow"], "scorer_backend"),
    ],
    ids=["no-redis", "unknown-model", "unknown-backend"],
)
def test_the_worker_command_refuses_what_it_cannot_serve(
    env: dict[str, str], args: list[str], refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLICKME_REDIS_URL", raising=False)
    result = CliRunner().invoke(app, ["worker", *args], env=env)
    assert result.exit_code == 2
    assert refusal in result.output
