"""`clickme worker`: answers one model's scoring requests from Redis, a batch at a time.

Each worker is a consumer of the model's group: it takes what is waiting (up to its batch size,
gathering for at most ``batch_max_wait_ms``), runs one forward pass and publishes each answer
before acknowledging and deleting the entries. Entries another worker read but never
acknowledged for ``worker_claim_timeout_ms`` (it died) are taken over (XAUTOCLAIM); entries past
their deadline are dropped unscored, since nobody waits for them any more.
"""

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import astuple, dataclass
from typing import cast

import numpy as np
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clickme.core import metrics
from clickme.core.config import Settings
from clickme.scoring.answers import RECONNECT_DELAY_S
from clickme.scoring.registry import get_model_spec
from clickme.scoring.remote import (
    GROUP,
    ScoreRequest,
    connect,
    encode_answer,
    stream_key,
)
from clickme.scoring.reveal import PreparedImage, PreparedImageCache, RevealView, ViewComposer
from clickme.scoring.scorer import Scorer, start_scorer
from clickme.scoring.torch_views import compose_views

log = logging.getLogger(__name__)

IDLE_BLOCK_MS = 500  # the longest wait for new entries: bounds how late a stop is noticed

_Entry = tuple[bytes, dict[bytes, bytes] | None]


@dataclass
class WorkerStats:
    answered: int = 0
    batches: int = 0
    taken_over: int = 0
    expired: int = 0

    def __add__(self, other: "WorkerStats") -> "WorkerStats":
        return WorkerStats(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


# What a request gives the batch: an image and the share it reveals (None: as sent), or a view
# and its photo, to draw on the device.
_Input = tuple[np.ndarray, float | None] | tuple[PreparedImage, RevealView]


def consumer_name() -> str:
    """This process's name in the group: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ScoringWorker:
    """Serves the scorer's model from its Redis stream until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        scorer: Scorer,
        consumer: str,
        composer: ViewComposer | None = None,
    ) -> None:
        if not settings.redis_url:
            raise ValueError("a worker needs CLICKME_REDIS_URL")
        self.scorer = scorer
        self.composer = composer or view_composer(settings)
        # On a GPU, the masks of a batch's views are drawn with torch on the device.
        gpu = settings.scorer_device.startswith("cuda")
        self.torch_device = settings.scorer_device if gpu else None
        self.consumer = consumer
        self.stream = stream_key(settings.redis_key_prefix, scorer.spec.name)
        self.batch_size = settings.batch_max_size
        self.max_wait_s = settings.batch_max_wait_ms / 1000
        self.claim_timeout_ms = settings.worker_claim_timeout_ms
        self.block_ms = max(1, min(IDLE_BLOCK_MS, self.claim_timeout_ms // 2))
        self.stats = WorkerStats()
        self._redis = connect(
            settings.redis_url,
            f"clickme-worker:{consumer}",
            socket_timeout=self.block_ms / 1000 + 5,
        )
        self._stopping = False  # a plain flag: an Event's lock is not safe in a signal handler
        self._reachable = True
        self._next_claim = 0.0
        self._claim_cursor: bytes | str = "0-0"

    def stop(self) -> None:
        """Stops after the batch in hand (safe from a signal handler)."""
        self._stopping = True

    def run(self) -> WorkerStats:
        while not self._stopping:
            try:
                self._serve_once()
                self._note_reachable(None)
            except ResponseError as error:
                if not str(error).startswith("NOGROUP"):
                    raise
                self._create_group()
            except (RedisConnectionError, RedisTimeoutError) as error:
                self._note_reachable(error)
                time.sleep(RECONNECT_DELAY_S)
        self._leave_group()
        self._redis.close()
        return self.stats

    def _serve_once(self) -> None:
        entries = self._take_over_stale() or self._read_new()
        if entries:
            self._answer(entries)

    def _create_group(self) -> None:
        """The group (and the stream), reading from the start: requests queued before the first
        worker came are served too."""
        try:
            self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
            log.info("created the consumer group of %s", self.stream)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    def _take_over_stale(self) -> list[_Entry]:
        """Entries read but left unacknowledged longer than the claim timeout (checked every
        half timeout, or at once while a previous scan has more to see)."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        cursor, entries, _deleted = self._redis.xautoclaim(
            self.stream,
            GROUP,
            self.consumer,
            min_idle_time=self.claim_timeout_ms,
            start_id=self._claim_cursor,
            count=self.batch_size,
        )
        self._claim_cursor = cursor
        more = cursor not in (b"0-0", "0-0")
        self._next_claim = now if more else now + self.claim_timeout_ms / 2000
        if entries:
            self.stats.taken_over += len(entries)
            log.info("took over %d requests left unanswered", len(entries))
        return entries

    def _read_new(self) -> list[_Entry]:
        """What is waiting, up to a batch; for at most ``batch_max_wait_ms`` more to fill it."""
        entries = self._read(self.batch_size, self.block_ms)
        gather_until = time.monotonic() + self.max_wait_s
        while entries and len(entries) < self.batch_size:
            remaining_ms = int((gather_until - time.monotonic()) * 1000)
            if remaining_ms < 1:
                break
            more = self._read(self.batch_size - len(entries), remaining_ms)
            if not more:
                break
            entries += more
        return entries

    def _read(self, count: int, block_ms: int) -> list[_Entry]:
        # Typed for every protocol and decoding; with RESP2 bytes: [(stream, entries)] or [].
        response = cast(
            list[tuple[bytes, list[_Entry]]],
            self._redis.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            ),
        )
        return list(response[0][1]) if response else []

    def _answer(self, entries: list[_Entry]) -> None:
        """Scores the live requests in one pass, publishes the answers, then acks and deletes
        every entry (answered, expired or malformed)."""
        requests = self._live_requests(entries)
        answers = self.score(requests)
        ids = [entry_id for entry_id, _ in entries]
        with self._redis.pipeline(transaction=False) as pipe:
            for request, answer in zip(requests, answers, strict=True):
                pipe.publish(request.reply_to, answer)
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()
        if requests:
            self.stats.answered += len(requests)
            self.stats.batches += 1

    def _live_requests(self, entries: list[_Entry]) -> list[ScoreRequest]:
        """The requests still awaited (malformed entries and expired ones are left out); their
        waits since queued (the entry id's Redis time) go to the metrics."""
        now_ms = time.time() * 1000
        live, waits_ms = [], []
        for entry_id, fields in entries:
            try:
                request = ScoreRequest.parse(fields)
            except ValueError as error:
                log.warning("dropped entry %s: %s", entry_id.decode(), error)
                continue
            if request.deadline_ms < now_ms:
                self.stats.expired += 1
            else:
                live.append(request)
                waits_ms.append(max(0.0, now_ms - int(entry_id.split(b"-")[0])))
        if live:
            metrics.record_batch(wait_ms / 1000 for wait_ms in waits_ms)
        return live

    def _input(self, request: ScoreRequest) -> _Input:
        """The image as sent; a view drawn here, with the share it reveals (on a GPU worker:
        its photo, to draw with the batch's other views on the device)."""
        if not isinstance(request.image, RevealView):
            return request.image, None
        if self.torch_device is not None:
            return self.composer.prepared(request.image), request.image
        return self.composer.draw(request.image)

    def _images(self, inputs: list[_Input]) -> tuple[np.ndarray, list[float | None]]:
        """The batch the model sees (the views left to the device drawn there at once), and
        the share each view reveals (None for an image as sent)."""
        images: list = [first for first, _ in inputs]  # a device view's photo until drawn
        shares: list = [second for _, second in inputs]  # a device view itself until drawn
        on_device = [i for i, (first, _) in enumerate(inputs) if isinstance(first, PreparedImage)]
        if on_device:
            composed, revealed = compose_views(
                [images[i] for i in on_device],
                [shares[i] for i in on_device],
                self.torch_device,  # type: ignore[arg-type]
            )
            for i, image, share in zip(on_device, composed, revealed, strict=True):
                images[i], shares[i] = image, float(share)
        return np.stack(images), shares

    def score(self, requests: list[ScoreRequest]) -> list[bytes]:
        """Draws the views, then one forward pass; a view that cannot be drawn (its photo is
        gone) is answered with its error, and if the pass fails, each request is."""
        answers: dict[bytes, bytes] = {}
        inputs, scored = [], []
        for request in requests:
            try:
                inputs.append(self._input(request))
                scored.append(request)
            except Exception as error:  # answered as a failure rather than left to time out
                log.exception("composing the view of request %s failed", request.request_id.hex())
                answers[request.request_id] = _failure(request, error)
        if scored:
            try:
                images, shares = self._images(inputs)
                probs = self.scorer.classify_batch_sync(images)
                for request, row, share in zip(scored, probs, shares, strict=True):
                    revealed = share if request.reports_share else None
                    answers[request.request_id] = encode_answer(
                        request.request_id, row, "", revealed
                    )
            except Exception as error:  # answered as a failure rather than left to time out
                log.exception("scoring a batch of %d failed", len(scored))
                answers |= {r.request_id: _failure(r, error) for r in scored}
        return [answers[r.request_id] for r in requests]

    def _note_reachable(self, error: RedisError | None) -> None:
        """Logs when Redis goes out of reach and when it is back (not every retry)."""
        if error is not None and self._reachable:
            log.warning("Redis is out of reach (%s): retrying", error)
        elif error is None and not self._reachable:
            log.info("Redis is back")
        self._reachable = error is None

    def _leave_group(self) -> None:
        """Removes this consumer from the group when it holds nothing unacknowledged."""
        try:
            mine = self._redis.xpending_range(
                self.stream, GROUP, "-", "+", count=1, consumername=self.consumer
            )
            if not mine:
                self._redis.xgroup_delconsumer(self.stream, GROUP, self.consumer)
        except RedisError as error:
            log.warning("could not leave the consumer group: %s", error)


def _failure(request: ScoreRequest, error: Exception) -> bytes:
    return encode_answer(request.request_id, error=f"{type(error).__name__}: {error}")


def lanes_and_threads(settings: Settings) -> tuple[int, int]:
    """How many batches the worker scores at once, and the CPU threads of each pass.

    On the CPU a pass spread over several threads waits, at every layer, for the slowest of
    them; beside other processes (an API, PostgreSQL) one of them is often descheduled, and the
    others idle. Lanes, each a consumer scoring its own batch on one thread, never wait for
    each other: by default one lane per thread (``benchmarks/bench_load.py``: 111.9 against
    about 80 reveals a second with one API and one worker on 2 cores). A device (cuda) runs
    one lane; ``worker_lanes`` chooses, the threads then shared among the lanes."""
    threads = settings.scorer_threads or os.cpu_count() or 1
    default_lanes = threads if settings.scorer_device == "cpu" else 1
    lanes = settings.worker_lanes or default_lanes
    return lanes, max(1, threads // lanes)


def view_composer(settings: Settings) -> ViewComposer:
    """Views drawn from the settings' images, their prepared photos kept in memory."""
    return ViewComposer(
        settings.images_dir, PreparedImageCache(settings.image_cache_size, settings.prepared_dir)
    )


def _stop(workers: list[ScoringWorker]) -> None:
    for worker in workers:
        worker.stop()


def run_worker(settings: Settings) -> WorkerStats:
    """Loads the model, serves its stream on each lane until SIGTERM or SIGINT, and says what
    it did (lane 0 is this process's consumer name; the others add their number)."""
    lanes, threads = lanes_and_threads(settings)
    settings = settings.model_copy(update={"scorer_threads": threads})
    scorer = start_scorer(settings, get_model_spec(settings.model))
    composer = view_composer(settings)  # one for every lane: the prepared photos kept once
    names = [consumer_name(), *(f"{consumer_name()}-{lane}" for lane in range(1, lanes))]
    workers = [ScoringWorker(settings, scorer, name, composer) for name in names]
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: _stop(workers))
    worker = workers[0]
    log.info(
        "worker %s scoring %s (%s on %s) from %s, batches of up to %d, %d lane(s) of %d thread(s)",
        worker.consumer,
        settings.model,
        settings.scorer_backend,
        settings.scorer_device,
        worker.stream,
        worker.batch_size,
        lanes,
        threads,
    )
    others = [threading.Thread(target=w.run, name=f"lane-{w.consumer}") for w in workers[1:]]
    try:
        for thread in others:
            thread.start()
        worker.run()
    finally:
        _stop(workers)
        for thread in others:
            thread.join()
        scorer.close()
    stats = sum((w.stats for w in workers), WorkerStats())
    log.info(
        "worker %s stopped: answered=%d batches=%d taken_over=%d expired=%d, by lane %s",
        worker.consumer,
        stats.answered,
        stats.batches,
        stats.taken_over,
        stats.expired,
        "+".join(str(w.stats.answered) for w in workers),
    )
    return stats
