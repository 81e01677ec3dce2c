"""Scoring through Redis: API processes queue images, `clickme worker` processes answer them.

The wire, per model: ``{prefix}:score:{model}`` is a stream read by the consumer group
``workers``. A request is one entry: its id, the channel to answer on, its deadline (Unix time in
ms, so the hosts' clocks must agree; nobody waits for it afterwards) and either the composed image
as raw bytes (uint8, 224 x 224 x 3: exactly what the model sees, 147 KiB) or its view (the photo's
file, the reveal rule, the points; with ``share`` set, the worker reports the share of the crop
the view reveals, which the API then need not draw). A worker reads what is waiting, scores it in
one forward pass, publishes each answer (request id, status byte, then the float32 probabilities,
after the float64 share revealed when reported, or an error message), then acknowledges and
deletes the entries (``clickme.scoring.worker``). A worker that does not know ``share`` answers
without it, and an API that does not ask is never sent it: either may be upgraded first.

Answers come back on one pub/sub channel per API process and model: one connection carries
every answer, one hop from the worker, with nothing to clean up when the process goes.
(Measured on one host: ~230 us per answer against ~265 us for a list emptied by BLPOP, which
must be re-armed after every answer; a list per request would hold a connection per waiting
request.) The channel is read on the API's event loop (``clickme.scoring.answers``). Whatever
is published while it is subscribing again after a lost connection is lost, so the requests
waiting then are failed at once with a clear 503.
"""

import asyncio
import logging
import struct
import time
import uuid
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import cast

import numpy as np
import orjson
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from clickme.core.config import Settings
from clickme.core.futures import settle
from clickme.core.shared_store import ThreadsConnections, redis_key
from clickme.scoring.answers import CONNECT_TIMEOUT_S, AnswersChannel
from clickme.scoring.batcher import AnswerRate
from clickme.scoring.registry import ModelSpec
from clickme.scoring.reveal import RevealRule, RevealView
from clickme.scoring.scorer import (
    IMAGE_SHAPE,
    Scorer,
    ScorerBusyError,
    check_batch,
    start_scorer,
)

log = logging.getLogger(__name__)

GROUP = "workers"
UNREACHABLE = "the DNN partner cannot be reached right now, try again"
_ANSWERED = b"\x00"
_FAILED = b"\x01"
_ANSWERED_WITH_SHARE = b"\x02"  # then the share revealed (float64), then the probabilities
_SHARE = struct.Struct("<d")
_ID_BYTES = 16  # then one status byte, then the payload
_PAYLOAD = _ID_BYTES + 1


class ScorerFailedError(RuntimeError):
    """The worker tried and failed to score the image (its forward pass raised)."""


@dataclass(frozen=True)
class ViewAnswer:
    """A view scored where it was drawn: the DNN's float32 (num_classes,) probabilities and
    the share of the evaluation crop the view reveals (``revealed_fraction`` of its mask; None
    from a worker that does not report it)."""

    probs: np.ndarray
    revealed: float | None


def stream_key(prefix: str, model_name: str) -> str:
    return redis_key(prefix, "score", model_name)


def connect(url: str, name: str, retries: int = 1, socket_timeout: float = 5.0) -> redis.Redis:
    """A client that fails fast when Redis is down (no backoff) and retries a stale connection."""
    return redis.Redis.from_url(
        url,
        client_name=name,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), retries),
    )


def _view_fields(view: RevealView) -> dict[str, bytes]:
    rule = view.rule
    return {
        "file": view.image_file.encode(),
        "rule": orjson.dumps([rule.radius, rule.softness, rule.background, rule.blur_sigma]),
        "points": np.ascontiguousarray(view.points, dtype="<f4").tobytes(),
        "share": b"1",
    }


def _parse_view(fields: dict[bytes, bytes]) -> RevealView:
    """The view in a request's fields; ValueError when it is not one (or its file would be
    outside the images folder)."""
    image_file = fields[b"file"].decode()
    if PurePosixPath(image_file).is_absolute() or ".." in PurePosixPath(image_file).parts:
        raise ValueError(f"an image file outside the images folder: {image_file!r}")
    radius, softness, background, blur_sigma = orjson.loads(fields[b"rule"])
    rule = RevealRule(float(radius), float(softness), background, float(blur_sigma))
    points = np.frombuffer(fields[b"points"], dtype="<f4").reshape(-1, 2).astype(np.float32)
    return RevealView(image_file, rule, points)


@dataclass(frozen=True)
class ScoreRequest:
    """One image to score: composed already, or its view for the worker to compose (a few
    hundred bytes instead of 147 KiB)."""

    request_id: bytes
    reply_to: bytes
    deadline_ms: int
    image: np.ndarray | RevealView
    reports_share: bool = False  # a view whose answer carries the share it reveals

    def fields(self) -> dict[FieldT, EncodableT]:
        fields: dict[FieldT, EncodableT] = {
            "id": self.request_id,
            "reply": self.reply_to,
            "deadline": self.deadline_ms,
        }
        if isinstance(self.image, RevealView):  # new requests always ask for the share
            fields.update(_view_fields(self.image))
        else:
            fields["image"] = self.image.tobytes()
        return fields

    @classmethod
    def parse(cls, fields: dict[bytes, bytes] | None) -> "ScoreRequest":
        """The request in a stream entry; ValueError when it is not one."""
        if fields is None:
            raise ValueError("not a scoring request: the entry was deleted")
        try:
            if b"image" in fields:
                image = np.frombuffer(fields[b"image"], dtype=np.uint8).reshape(IMAGE_SHAPE)
                what: np.ndarray | RevealView = image
            else:
                what = _parse_view(fields)
            deadline_ms = int(fields[b"deadline"])
            reports_share = isinstance(what, RevealView) and b"share" in fields
            return cls(fields[b"id"], fields[b"reply"], deadline_ms, what, reports_share)
        except (KeyError, ValueError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"not a scoring request: {error}") from error


def encode_answer(
    request_id: bytes,
    probs: np.ndarray | None = None,
    error: str = "",
    revealed: float | None = None,
) -> bytes:
    """The request id, then the probabilities (float32), after the share revealed when given;
    or, when scoring failed, the error."""
    if probs is None:
        return request_id + _FAILED + error.encode()
    if revealed is None:
        return request_id + _ANSWERED + probs.astype("<f4").tobytes()
    share = _SHARE.pack(revealed)
    return request_id + _ANSWERED_WITH_SHARE + share + probs.astype("<f4").tobytes()


Scored = np.ndarray | ViewAnswer  # what a request's future holds: a view's answer has its share


def decode_answer(data: bytes) -> tuple[bytes, Scored | ScorerFailedError]:
    """The request id, and its probabilities (with the share revealed, when reported) or the
    worker's error."""
    request_id, status, payload = data[:_ID_BYTES], data[_ID_BYTES:_PAYLOAD], data[_PAYLOAD:]
    if status == _ANSWERED:
        return request_id, _probabilities(payload)
    if status == _ANSWERED_WITH_SHARE:
        (revealed,) = _SHARE.unpack_from(payload)
        return request_id, ViewAnswer(_probabilities(payload[_SHARE.size :]), revealed)
    return request_id, ScorerFailedError(payload.decode(errors="replace"))


def _probabilities(payload: bytes) -> np.ndarray:
    return np.frombuffer(payload, dtype="<f4").astype(np.float32)


class RedisScorer:
    """The Scorer of an API process when workers score: each request goes onto the model's
    stream from the thread that sends it (one round trip to Redis: not from the event loop),
    answers come back on this scorer's own channel, read on ``loop`` (else the loop running
    where it starts, else a loop of its own: ``AnswersChannel``). Redis out of reach: 503
    ``scorer_busy`` at once; no answer in time: TimeoutError."""

    def __init__(
        self, settings: Settings, spec: ModelSpec, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        if not settings.redis_url:
            raise ValueError("scoring through Redis needs CLICKME_REDIS_URL")
        self.spec = spec
        self.stream = stream_key(settings.redis_key_prefix, spec.name)
        channel = redis_key(settings.redis_key_prefix, "answers", uuid.uuid4().hex).encode()
        self.timeout_ms = settings.scorer_timeout_ms
        self.queue_max = settings.score_queue_max
        self._sender = connect(settings.redis_url, "clickme-api")
        self._commands = ThreadsConnections(self._sender)
        self._waiting: dict[bytes, Future[Scored]] = {}
        self.rate = AnswerRate()
        self.answers = AnswersChannel(
            settings.redis_url, channel, self._receive, self._channel_lost, loop
        )

    @property
    def channel(self) -> bytes:
        return self.answers.channel

    def start(self) -> None:
        """Subscribes to the answers' channel (blocking, briefly: Redis may be down)."""
        if not self.answers.open():
            log.warning("Redis is out of reach: reveals answer 503 until it is back")

    def close(self) -> None:
        """Stops reading answers; requests still waiting fail (503), new ones are refused."""
        self.answers.close()
        self._fail_waiting(ScorerBusyError(UNREACHABLE))
        self._sender.close()

    async def classify(self, image: np.ndarray) -> np.ndarray:
        """From the event loop: sent from a thread of the loop's default pool."""
        future = await asyncio.to_thread(self.send, image)
        return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_ms / 1000)

    def send(self, image: np.ndarray) -> Future[np.ndarray]:
        check_batch(image[np.newaxis])
        (future,) = self._send([image])
        return cast(Future[np.ndarray], future)

    def send_view(self, view: RevealView) -> Future[Scored]:
        """Like ``send``, for the worker to draw the view (its prepared photo, the mask of the
        points): the future gets a ``ViewAnswer`` with the share it reveals, or from a worker
        that does not report the share, the probabilities alone."""
        (future,) = self._send([view])
        return future

    def expected_wait_s(self) -> float:
        return self.rate.wait_s(len(self._waiting) + 1)

    def classify_batch_sync(self, images: np.ndarray) -> np.ndarray:
        """Blocking: never on the loop that reads the answers (it could not read them)."""
        if self.answers.on_its_loop():
            raise RuntimeError("classify_batch_sync would block the loop its answers come on")
        check_batch(images)
        futures = self._send(list(images))
        try:
            if wait(futures, timeout=self.timeout_ms / 1000).not_done:
                raise ScorerBusyError()
            return np.stack([_probs(future.result()) for future in futures])
        finally:
            for future in futures:
                future.cancel()  # those not answered: no longer waited for

    def _send(self, images: list[np.ndarray] | list[RevealView]) -> list[Future[Scored]]:
        """One request per image onto the stream, in one round trip; each answer settles its
        future, and a future leaves the waiting requests once settled or cancelled."""
        if not self.answers.listening.is_set():
            raise ScorerBusyError(UNREACHABLE)
        deadline_ms = int(time.time() * 1000) + self.timeout_ms
        requests = [ScoreRequest(uuid.uuid4().bytes, self.channel, deadline_ms, i) for i in images]
        futures = [self._waiting_for(request.request_id) for request in requests]
        try:
            self._queue(requests)
        except RedisError as error:
            for future in futures:
                future.cancel()
            log.warning("could not queue %d scoring requests: %s", len(requests), error)
            raise ScorerBusyError(UNREACHABLE) from error
        return futures

    def _waiting_for(self, request_id: bytes) -> Future[Scored]:
        future: Future[Scored] = Future()
        self.rate.submitted(idle=not self._waiting)
        self._waiting[request_id] = future
        future.add_done_callback(lambda _: self._waiting.pop(request_id, None))
        return future

    def _queue(self, requests: list[ScoreRequest]) -> None:
        if len(requests) == 1:  # a reveal's: on the sending thread's connection, no pipeline
            fields = [part for pair in requests[0].fields().items() for part in pair]
            self._commands.execute("XADD", self.stream, "MAXLEN", "~", self.queue_max, "*", *fields)
            return
        with self._sender.pipeline(transaction=False) as pipe:
            for request in requests:
                pipe.xadd(self.stream, request.fields(), maxlen=self.queue_max, approximate=True)
            pipe.execute()

    def _receive(self, data: bytes) -> None:
        """An answer on the channel (on the answers' loop): its request's future settled."""
        request_id, outcome = decode_answer(data)
        self.rate.note()
        future = self._waiting.get(request_id)
        if future is not None:
            settle(future, outcome)

    def _channel_lost(self) -> None:
        """Answers may have been lost: the requests waiting fail at once (503)."""
        self._fail_waiting(ScorerBusyError(UNREACHABLE))

    def _fail_waiting(self, error: Exception) -> None:
        for future in list(self._waiting.values()):
            settle(future, error)


def _probs(answer: Scored) -> np.ndarray:
    return answer.probs if isinstance(answer, ViewAnswer) else answer


def open_scorer(
    settings: Settings, spec: ModelSpec, loop: asyncio.AbstractEventLoop | None = None
) -> Scorer:
    """The model's scorer, started: through Redis to the workers when scoring is remote (its
    answers read on ``loop``: see ``RedisScorer``), else loaded in this process."""
    if not settings.remote_scoring:
        return start_scorer(settings, spec)
    scorer = RedisScorer(settings, spec, loop)
    scorer.start()
    return scorer
