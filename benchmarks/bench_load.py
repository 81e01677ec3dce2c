"""Load: N simulated players over HTTP against a deployment started on this machine.

    .venv/bin/python benchmarks/bench_load.py [--players 1 8 32 128] [--configs inproc worker 2api]
        [--duration 20] [--worker-threads 0] [--models-dir DIR]

The script builds the deployment itself: a PostgreSQL database created for the run
(``--postgres-admin-url``), a Redis key prefix of its own (``--redis-url``), ``clickme db
upgrade``, the ImageNet sample (``CLICKME_IMAGENET_SAMPLE``) or else the demo photos, then for
each configuration ``clickme serve`` processes on free ports and ``clickme worker`` processes
(and ``ANALYZE`` and ``clickme images prepare`` once the campaign exists):

- ``inproc``: one API process scoring in the process (Redis still holds the shared state);
- ``worker``: one API process, one worker, scoring through Redis;
- ``2api``: two API processes, one worker.

Players are spread round-robin over the API processes (each keeps its own keep-alive connection,
``lean_http``: no proxy is needed to spread them, and the generator's own CPU, which runs beside
the API and the workers, stays small). A player consents, starts rounds (saying when the photo is
shown, as the page does) and paints a centre-out spiral, a point every 50 ms, sending the new
points every ~300 ms (one batch in flight, numbered; a batch that fails on the network or with a
5xx is sent again unchanged, like the game's client). A round ends when a reveal says correct,
when the time is up (the player asks the server to finish it) or, for some players, by a skip
after a few seconds; a pause, then the next round. Rate limits are raised so that one address may
play as all of them.

For each configuration and player count it reports reveal latency p50 / p99 (client side),
reveals per second, errors by kind (503s apart from other 5xx), and the points the server
acknowledged against the points found in PostgreSQL for the step's rounds (they must be equal).
CPU is read from /proc (utime + stime) for the API processes, the workers, the PostgreSQL
backends of the run's database and this generator. The bare model's batch-8 throughput
(``bench_model.batch_throughput``) is measured before each configuration starts, so that each
ratio compares figures taken minutes apart on a machine whose load may drift; a write stress
measures how many points per second PostgreSQL stores through the game's own hot path.
"""

import argparse
import asyncio
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import numpy as np
import redis
import sqlalchemy as sa
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_model import (
    THROUGHPUT_BATCH,
    ForwardCpu,
    batch_throughput,
    forward_cpu,
    process_cpu_s,
    schedstat_cpu_s,
    scored_so_far,
)
from lean_http import LeanClient, Reply, StrokesSocket, TransportError

from clickme.campaigns import service as campaigns
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.models import PointBatch
from clickme.game.points import POINT_DTYPE
from clickme.game.schemas import PointBatchIn
from clickme.game.service import (
    BatchRules,
    RoundFacts,
    load_facts,
    start_round,
    store_any_batch,
)
from clickme.maps.aggregate import MapSettings
from clickme.players.service import create_player
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.scorer import Scorer, build_scorer
from tests.live_server import clickme_command, free_port, stop_process

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
START_TIMEOUT_S = 240.0
UNLIMITED = "1000000"

POINT_EVERY_MS = 50
BATCH_EVERY_MS = 300
HAND_SPEED = 0.8  # image short sides per second along the stroke
TURN_SPACING = 1.6  # brush radii between the spiral's turns
SKIPPER_SHARE = 0.25  # players who skip a round not won after SKIP_AFTER_S
SKIP_AFTER_S = (2.0, 5.0)
ROUND_PAUSE_S = (0.5, 1.5)  # looking at the result before the next round
FIRST_RETRY_S = 0.25
MAX_RETRY_S = 2.0
MAX_ATTEMPTS = 10
FINISH_RETRY_S = 0.2
CLIENT_TIMEOUT_S = 30.0
NEW_PLAYER_CODES = {"no_player", "no_images_left", "player_done"}
WARMUP_PLAYERS = 4
TRANSPORTS = ("http", "ws")
WARMUP_S = 3.0


@dataclass(frozen=True)
class Config:
    name: str
    api_processes: int
    workers: int

    def describe(self) -> str:
        scoring = "in-process scoring" if not self.workers else f"{self.workers} worker"
        return f"{self.api_processes} API, {scoring}"


CONFIGS = {
    c.name: c for c in (Config("inproc", 1, 0), Config("worker", 1, 1), Config("2api", 2, 1))
}


# --- The players ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What the players saw during one step."""

    latencies_ms: list[float] = field(default_factory=list)
    reveal_done_at: list[float] = field(default_factory=list)  # loop time of each 200 reveal
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # 5xx, transport, unexpected 4xx
    outcomes: Counter[str] = field(default_factory=Counter)
    acked_points: int = 0  # in batches the server acknowledged (each batch once)
    refused_points: int = 0  # in batches refused by rule (sent after the round had ended)
    unconfirmed_points: int = 0  # in batches given up after MAX_ATTEMPTS
    round_ids: list[int] = field(default_factory=list)
    until: float = 0.0  # loop time at which the players stopped starting anything new

    @property
    def requests(self) -> int:
        return self.statuses.total() + self.transport_errors

    @property
    def transport_errors(self) -> int:
        return sum(n for kind, n in self.errors.items() if kind.startswith("transport"))

    @property
    def overload_503s(self) -> int:
        return self.statuses[503]

    @property
    def other_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


def spiral_point(
    t_ms: float, width: int, height: int, radius_px: float, phase: float
) -> tuple[float, float]:
    """Where a hand moving at HAND_SPEED along a centre-out spiral is after t_ms (closed form:
    the arc length of r = b * theta is about b * theta^2 / 2)."""
    b = TURN_SPACING * radius_px / (2 * math.pi)
    theta = math.sqrt(2 * HAND_SPEED * min(width, height) * t_ms / 1000 / b)
    angle = theta + phase
    return width / 2 + b * theta * math.cos(angle), height / 2 + b * theta * math.sin(angle)


class Stroke:
    """The round's painting: a point every POINT_EVERY_MS, those off the image dropped."""

    def __init__(self, round_: dict, rng: random.Random) -> None:
        self.width, self.height = round_["image"]["width"], round_["image"]["height"]
        self.radius = round_["brush"]["radius_px"]
        self.limit_ms = round_["time_limit_ms"]
        self.phase = rng.uniform(0, 2 * math.pi)
        self.next_t = 0

    def points_until(self, elapsed_ms: float) -> list[list[float]]:
        """The points painted since the last call, up to elapsed_ms (within the time limit)."""
        points = []
        while self.next_t <= min(elapsed_ms, self.limit_ms - 1):
            x, y = spiral_point(self.next_t, self.width, self.height, self.radius, self.phase)
            if 0 <= x < self.width and 0 <= y < self.height:
                points.append([x, y, self.next_t])
            self.next_t += POINT_EVERY_MS
        return points


def _retry_after_s(response: Reply | None, rng: random.Random) -> float | None:
    """The wait a 503 asks for (Retry-After, in seconds), plus up to as much again at random, as
    the game page waits; None when it asks for none."""
    value = response.headers.get("retry-after") if response is not None else None
    if value is None or not value.isdigit():
        return None
    return int(value) * (1 + rng.random())


def _error_code(response: Reply) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""


class SimPlayer:
    """One simulated player on its own connection to one API process."""

    def __init__(
        self, client: LeanClient, rng: random.Random, tally: Tally, transport: str = "http"
    ) -> None:
        self.client = client
        self.socket = StrokesSocket(client) if transport == "ws" else None
        self.rng = rng
        self.tally = tally
        self.skipper = rng.random() < SKIPPER_SHARE
        self.loop = asyncio.get_running_loop()

    async def play(self, until: float, start_delay_s: float) -> None:
        await asyncio.sleep(start_delay_s)
        while self.loop.time() < until:
            round_ = await self._start_round()
            if round_ is not None:
                await self._play_round(round_, until)
                await asyncio.sleep(self.rng.uniform(*ROUND_PAUSE_S))

    async def _request(self, path: str, body: dict | None = None) -> Reply | None:
        """POST, sent again unchanged on a transport error or a 5xx (with a growing delay);
        the last response, or None when every attempt failed on the network."""
        return await self._sent(lambda: self.client.post(path, json=body))

    async def _sent(self, exchange: Callable[[], Awaitable[Reply]]) -> Reply | None:
        """The exchange's reply, tried again as ``_request`` says."""
        delay, response = FIRST_RETRY_S, None
        for _ in range(MAX_ATTEMPTS):
            try:
                response = await exchange()
            except TransportError as error:
                self.tally.errors[f"transport {str(error).split(':')[0]}"] += 1
                response = None
            else:
                self.tally.statuses[response.status_code] += 1
                if response.status_code < 500:
                    return response
                self.tally.errors[f"{response.status_code} {_error_code(response)}"] += 1
            await asyncio.sleep(_retry_after_s(response, self.rng) or delay)
            delay = min(delay * 2, MAX_RETRY_S)
        return response

    def _unexpected(self, response: Reply | None, what: str) -> None:
        status = "no answer" if response is None else response.status_code
        if response is None or response.status_code < 500:  # 5xx are already counted
            self.tally.errors[f"{status} {what}"] += 1

    async def _start_round(self) -> dict | None:
        response = await self._request("/api/rounds", {"viewport_width": 1280})
        if response is not None and response.status_code == 201:
            round_ = response.json()
            self.tally.round_ids.append(round_["round_id"])
            shown = await self._request(f"/api/rounds/{round_['round_id']}/start")
            if shown is None or shown.status_code != 200:
                self._unexpected(shown, "showing the photo")
            return round_
        if response is not None and _error_code(response) in NEW_PLAYER_CODES:
            joined = await self._request("/api/players", {"consent": True})
            if joined is None or joined.status_code != 201:
                self._unexpected(joined, "joining")
            return None
        self._unexpected(response, f"starting a round {_error_code(response) if response else ''}")
        await asyncio.sleep(FIRST_RETRY_S)
        return None

    async def _play_round(self, round_: dict, until: float) -> None:
        """Paint and send a batch every BATCH_EVERY_MS (one in flight) until the round ends,
        the player skips, or the step is over (the round is then left open)."""
        started = self.loop.time()
        stroke = Stroke(round_, self.rng)
        limit_s = round_["time_limit_ms"] / 1000
        skip_at = started + self.rng.uniform(*SKIP_AFTER_S) if self.skipper else math.inf
        seq, next_send = 0, started + self.rng.uniform(0.5, 1.0) * BATCH_EVERY_MS / 1000
        while self.loop.time() < until:
            await asyncio.sleep(max(0.0, next_send - self.loop.time()))
            now = self.loop.time()
            next_send = now + BATCH_EVERY_MS / 1000
            if now >= skip_at:
                await self._end_round(round_["round_id"], "skip")
                return
            points = stroke.points_until((now - started) * 1000)
            if points:
                seq += 1
                if await self._send_batch(round_["round_id"], seq, points) != "playing":
                    return
            if now - started >= limit_s:
                await self._end_round(round_["round_id"], "finish")
                return

    async def _send_batch(self, round_id: int, seq: int, points: list) -> str | None:
        """The round's state after the batch; None when the batch was refused or unanswered."""
        started = time.perf_counter()
        body = {"seq": seq, "points": points, "pointer_type": "mouse"}
        socket = self.socket
        if socket is None:
            response = await self._request(f"/api/rounds/{round_id}/points", body)
        else:
            response = await self._sent(lambda: socket.reveal(round_id, body))
        if response is not None and response.status_code == 200:
            self.tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.tally.reveal_done_at.append(self.loop.time())
            self.tally.acked_points += len(points)
            reveal = response.json()
            if reveal["state"] != "playing":
                self.tally.outcomes[reveal["state"]] += 1
            return reveal["state"]
        if response is not None and _error_code(response) == "round_ended":
            self.tally.refused_points += len(points)
            self.tally.outcomes["ended late"] += 1
            return None
        if response is None or response.status_code >= 500:
            self.tally.unconfirmed_points += len(points)
        self._unexpected(response, f"batch {_error_code(response) if response else ''}")
        return None

    async def _end_round(self, round_id: int, action: str) -> None:
        """Skip, or finish once the server's clock agrees the time is up."""
        for _ in range(MAX_ATTEMPTS):
            response = await self._request(f"/api/rounds/{round_id}/{action}")
            if response is not None and response.status_code == 200:
                self.tally.outcomes[response.json()["outcome"]] += 1
                return
            if response is None or _error_code(response) != "round_running":
                break
            await asyncio.sleep(FINISH_RETRY_S)
        self._unexpected(response, f"{action} {_error_code(response) if response else ''}")


async def run_players(
    base_urls: list[str],
    players: int,
    duration_s: float,
    seed: int,
    label: str = "",
    transport: str = "http",
) -> Tally:
    """N players for duration_s (then each finishes its request in hand), round-robin over
    the API processes, their starts spread over one batch interval; their batches over HTTP or
    (``ws``) each player's strokes' WebSocket."""
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        clients = [
            LeanClient(base_urls[i % len(base_urls)], CLIENT_TIMEOUT_S) for i in range(players)
        ]
        for client in clients:
            stack.push_async_callback(client.aclose)
        until = loop.time() + duration_s
        tally = Tally(until=until)
        crowd = [
            SimPlayer(c, random.Random(seed * 100_003 + i), tally, transport)
            for i, c in enumerate(clients)
        ]
        for player in crowd:
            if player.socket is not None:
                stack.push_async_callback(player.socket.aclose)
        tasks = [
            asyncio.create_task(p.play(until, i * BATCH_EVERY_MS / 1000 / players))
            for i, p in enumerate(crowd)
        ]
        with tqdm(total=round(duration_s), desc=label, unit="s", leave=False) as bar:
            while not all(task.done() for task in tasks):
                await asyncio.wait(tasks, timeout=1.0)
                bar.n = min(round(duration_s), round(duration_s - (until - loop.time())))
                bar.set_postfix(reveals=len(tally.latencies_ms), refresh=True)
        for task in tasks:
            task.result()
    return tally


# --- The deployment ------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """The run's database, Redis prefix, data dir and the environment every process gets."""

    root: Path
    env: dict[str, str]
    database_url: str
    engine: sa.Engine
    image_set: str

    @property
    def data_dir(self) -> Path:
        return Path(self.env["CLICKME_DATA_DIR"])


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} failed:\n{result.stderr[-3000:]}")


def _deployment_env(data_dir: Path, database_url: str, redis_url: str, prefix: str) -> dict:
    """This environment without its CLICKME_* settings, plus the deployment's; rate limits
    lifted (every player comes from 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKME_")}
    return env | {
        "CLICKME_DATA_DIR": str(data_dir),
        "CLICKME_DATABASE_URL": database_url,
        "CLICKME_REDIS_URL": redis_url,
        "CLICKME_REDIS_KEY_PREFIX": prefix,
        "CLICKME_SECRET_KEY": secrets.token_urlsafe(48),
        "CLICKME_LOG_FORMAT": "json",
        "CLICKME_SCORER_BACKEND": "onnx",
        "CLICKME_RATE_REVEALS_PER_S": UNLIMITED,
        "CLICKME_RATE_ROUNDS_PER_MIN": UNLIMITED,
        "CLICKME_RATE_PLAYERS_PER_MIN": UNLIMITED,
    }


@contextmanager
def deployment(
    root: Path,
    *,
    admin_url: str,
    redis_url: str,
    redis_prefix: str,
    models_dir: Path,
    images_dir: Path | None,
) -> Iterator[Deployment]:
    """A fresh PostgreSQL database, migrated, with the images imported (the ImageNet sample
    folder, or the demo photos); the database dropped and the prefix's Redis keys deleted at
    the end. ``models_dir`` caches the ONNX export across runs."""
    name = f"clickme_bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    data_dir = root / "data"
    env = _deployment_env(data_dir, database_url, redis_url, redis_prefix)
    engine = sa.create_engine(database_url)
    try:
        (root / "logs").mkdir(parents=True)
        data_dir.mkdir()
        models_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "models").symlink_to(models_dir.resolve(), target_is_directory=True)
        _run(clickme_command("db", "upgrade"), env)
        if images_dir is None:
            _run(clickme_command("images", "import-demo"), env)
        else:
            _run(clickme_command("images", "import", str(images_dir), "--set", "bench"), env)
        yield Deployment(root, env, database_url, engine, "demo" if images_dir is None else "bench")
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        with redis.Redis.from_url(redis_url) as client:
            for key in client.scan_iter(f"{redis_prefix}:*"):
                client.delete(key)


@dataclass(frozen=True)
class Process:
    """A `clickme` process: its base URL (the API, or a worker's metrics server) and log."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextmanager
def process(
    deploy: Deployment, name: str, args: list[str], env: dict, port: int
) -> Iterator[Process]:
    """`clickme <args>` with the deployment's environment; stopped (SIGTERM) at the end."""
    log_path = deploy.root / "logs" / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            clickme_command(*args), env=deploy.env | env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield Process(name, popen, f"http://127.0.0.1:{port}", log_path)
    finally:
        stop_process(popen, timeout_s=30)


def wait_ready(api: Process) -> None:
    """Until the API's /readyz answers 200 (database, Redis and the DNN, wherever it runs)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.popen.poll() is not None:
            raise RuntimeError(f"{api.name} exited ({api.popen.returncode}):\n{api.log_tail()}")
        try:
            if httpx.get(f"{api.url}/readyz", timeout=10).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{api.name} not ready after {START_TIMEOUT_S}s:\n{api.log_tail()}")


@dataclass(frozen=True)
class Running:
    apis: list[Process]
    workers: list[Process]

    @property
    def scorers(self) -> list[Process]:
        """The processes that run the DNN."""
        return self.workers or self.apis


@contextmanager
def started(deploy: Deployment, config: Config, worker_threads: int) -> Iterator[Running]:
    """The configuration's workers and API processes, each API ready (one after the other:
    each prepares the default campaign on start)."""
    env = {"CLICKME_INPROCESS_SCORING": "false" if config.workers else "true"}
    with ExitStack() as stack:
        workers = []
        for i in range(config.workers):
            port = free_port()
            args = ["worker", "--model", DEFAULT_MODEL, "--batch-size", str(THROUGHPUT_BATCH)]
            args += ["--backend", "onnx", "--threads", str(worker_threads)]
            args += ["--metrics-port", str(port)]
            workers.append(
                stack.enter_context(process(deploy, f"{config.name}-worker{i}", args, env, port))
            )
        apis = []
        for i in range(config.api_processes):
            port = free_port()
            args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
            args += ["--campaign-image-set", deploy.image_set]
            api = stack.enter_context(process(deploy, f"{config.name}-api{i}", args, env, port))
            wait_ready(api)
            apis.append(api)
        analyze(deploy.engine)
        # As a deployment does before players come (and as the first round on each photo would
        # otherwise do): the photos prepared for revealing, kept in the shared data dir.
        slug = campaigns.DEFAULT_CAMPAIGN_SLUG
        _run(clickme_command("images", "prepare", "--campaign", slug), deploy.env)
        yield Running(apis, workers)


def analyze(engine: sa.Engine) -> None:
    """Planner statistics for the imported images and the campaign's play counters, as
    autovacuum would gather them within a minute: without them PostgreSQL joins the fresh
    tables by nested loops and each round start takes some 100 ms more (1000 images)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("ANALYZE"))


# --- Measuring -----------------------------------------------------------------------------


def backend_pids(engine: sa.Engine) -> list[int]:
    """The PostgreSQL backends connected to this database (but this query's own)."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    with engine.connect() as connection:
        return list(connection.scalars(sa.text(f"{query} AND pid <> pg_backend_pid()")))


CpuSnapshot = dict[str, dict[int, float]]
CPU_GROUPS = ("api", "worker", "postgres", "generator")


def cpu_snapshot(running: Running, engine: sa.Engine) -> CpuSnapshot:
    pids = (
        [p.popen.pid for p in running.apis],
        [p.popen.pid for p in running.workers],
        backend_pids(engine),
        [os.getpid()],
    )
    readers = (process_cpu_s, process_cpu_s, schedstat_cpu_s, process_cpu_s)
    return {
        group: {pid: read(pid) for pid in group_pids}
        for group, group_pids, read in zip(CPU_GROUPS, pids, readers, strict=True)
    }


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds per group between two snapshots (a process new since counts in full)."""
    return {
        group: sum(seconds - before[group].get(pid, 0.0) for pid, seconds in pids.items())
        for group, pids in after.items()
    }


def scored_by(scorers: list[Process]) -> tuple[float, float]:
    """(images, forward passes) the processes' DNN has run, from their /metrics."""
    counts = [scored_so_far(scorer.url) for scorer in scorers]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def stored_points(engine: sa.Engine, round_ids: list[int]) -> int:
    """The points PostgreSQL holds for these rounds (bytes stored / bytes per point)."""
    stored = sa.select(sa.func.coalesce(sa.func.sum(sa.func.octet_length(PointBatch.data)), 0))
    with engine.connect() as connection:
        total = connection.scalar(stored.where(PointBatch.round_id.in_(round_ids)))
    return int(total) // POINT_DTYPE.itemsize


@dataclass(frozen=True)
class StepResult:
    config: Config
    transport: str  # the batches': "http" or "ws" (the strokes' WebSocket)
    players: int
    duration_s: float
    wall_s: float
    tally: Tally
    stored_points: int
    cpu_s: dict[str, float]
    images: float
    passes: float

    @property
    def reveals(self) -> int:
        return len(self.tally.latencies_ms)

    def describe(self) -> str:
        return f"{self.config.describe()}, batches over {self.transport}"

    @property
    def reveals_per_s(self) -> float:
        """Reveals answered inside the step's duration, per second."""
        return sum(t <= self.tally.until for t in self.tally.reveal_done_at) / self.duration_s

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.tally.latencies_ms, percentile)) if self.reveals else 0.0

    def cpu_ms_per(self, group: str, count: float) -> float:
        return self.cpu_s[group] * 1000 / count if count else 0.0

    @property
    def points_stored_per_s(self) -> float:
        return self.stored_points / self.wall_s


def measure_step(
    deploy: Deployment,
    running: Running,
    config: Config,
    players: int,
    duration_s: float,
    seed: int,
    transport: str = "http",
) -> StepResult:
    before = cpu_snapshot(running, deploy.engine)
    images, passes = scored_by(running.scorers)
    started_at = time.monotonic()
    label = f"{config.name} {transport} {players} players"
    urls = [api.url for api in running.apis]
    tally = asyncio.run(run_players(urls, players, duration_s, seed, label, transport))
    wall_s = time.monotonic() - started_at
    cpu = cpu_used(before, cpu_snapshot(running, deploy.engine))
    images_after, passes_after = scored_by(running.scorers)
    stored = stored_points(deploy.engine, tally.round_ids)
    return StepResult(
        config,
        transport,
        players,
        duration_s,
        wall_s,
        tally,
        stored,
        cpu,
        images_after - images,
        passes_after - passes,
    )


@dataclass(frozen=True)
class BareModel:
    images_per_s: float
    cpu_ms_per_image: float
    forward: ForwardCpu


class _CountingScorer:
    """A scorer that counts the images it classifies."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.images = 0

    def classify_batch_sync(self, batch: np.ndarray) -> np.ndarray:
        self.images += len(batch)
        return self.scorer.classify_batch_sync(batch)


def bare_model(deploy: Deployment, repeats: int) -> BareModel:
    """The default model's batch-8 throughput on ONNX Runtime (all cores), and its CPU cost."""
    settings = Settings(data_dir=deploy.data_dir, scorer_backend="onnx")
    scorer = build_scorer(settings, get_model_spec(DEFAULT_MODEL))
    counting = _CountingScorer(scorer)
    cpu_before = time.process_time()
    throughput = batch_throughput(counting, THROUGHPUT_BATCH, repeats)  # type: ignore[arg-type]
    cpu_s = time.process_time() - cpu_before
    forward = forward_cpu(scorer, repeats)
    scorer.close()
    return BareModel(throughput, cpu_s * 1000 / counting.images, forward)


@dataclass(frozen=True)
class WriteRate:
    threads: int
    batches_per_s: float
    points_per_batch: int
    postgres_cpu_ms_per_batch: float
    writer_cpu_ms_per_batch: float  # the writing process's: what the store costs an API

    @property
    def points_per_s(self) -> float:
        return self.batches_per_s * self.points_per_batch


POINTS_PER_BATCH = BATCH_EVERY_MS // POINT_EVERY_MS
# committed as the game commits them by default (``CLICKME_STROKES_SYNCHRONOUS_COMMIT``; the
# deployments get none of this environment's settings)
WRITE_RULES = BatchRules(
    max_points=500,
    grace_ms=0,
    rule=MapSettings(),
    start_bound_s=60.0,
    durable=Settings.model_fields["strokes_synchronous_commit"].default,
)


def _open_rounds(database: Database, count: int) -> list[RoundFacts]:
    """A round each for ``count`` new players, its time limit lifted for the stress."""
    with database.session() as session:
        campaign = campaigns.get_campaign_by_slug(session, campaigns.DEFAULT_CAMPAIGN_SLUG)
        started = []
        for _ in range(count):
            player, _created = create_player(session)
            new = start_round(session, player.id, campaign, (None, None), MapSettings(), 0, 60.0)
            started.append((new.id, player.id))
    with database.session() as session:
        return [replace(load_facts(session, r, p), time_limit_ms=10**9) for r, p in started]


def _write_batches(database: Database, facts: RoundFacts, until: float) -> int:
    """The reveal's write (``store_any_batch``: UPDATE the round, INSERT the batch, commit) in
    a loop until ``until``; the batches written."""
    points = [(10.0 + i, 10.0, i * POINT_EVERY_MS) for i in range(POINTS_PER_BATCH)]
    seq = 0
    while time.monotonic() < until:
        seq += 1
        batch = PointBatchIn(seq=seq, points=points)
        # The first batch starts the round's clock (no start call); then the facts keep it.
        # New players: their cookies are of token epoch 0.
        facts = store_any_batch(database, facts, batch, WRITE_RULES, token_epoch=0).facts
    return seq


def postgres_write_rate(deploy: Deployment, threads: int, duration_s: float) -> WriteRate:
    """Batches per second PostgreSQL stores through the game's hot path from ``threads``
    threads, its backends' CPU per batch and this process's."""
    database = Database(deploy.database_url)
    try:
        rounds = _open_rounds(database, threads)
        before = {pid: schedstat_cpu_s(pid) for pid in backend_pids(deploy.engine)}
        writer_before = process_cpu_s(os.getpid())
        written = [0] * threads
        until = time.monotonic() + duration_s
        started_at = time.monotonic()

        def write(i: int) -> None:
            written[i] = _write_batches(database, rounds[i], until)

        pool = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.monotonic() - started_at
        writer_s = process_cpu_s(os.getpid()) - writer_before
        after = {pid: schedstat_cpu_s(pid) for pid in backend_pids(deploy.engine)}
    finally:
        database.dispose()
    cpu_s = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
    batches = sum(written)
    per_batch_ms = 1000 / batches
    return WriteRate(
        threads, batches / elapsed, POINTS_PER_BATCH, cpu_s * per_batch_ms, writer_s * per_batch_ms
    )


# --- The report ----------------------------------------------------------------------------


def load_table(results: list[StepResult], bare: dict[str, BareModel]) -> str:
    rows = [
        "| configuration | players | reveals/s | ÷ bare model | p50 ms | p99 ms | 503 | other 5xx "
        "| other errors | points sent | points stored | rounds correct / timeout / skip |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        t = r.tally
        ratio = r.reveals_per_s / bare[r.config.name].images_per_s
        other = t.errors.total() - sum(n for k, n in t.errors.items() if k[:1] == "5")
        outcomes = " / ".join(str(t.outcomes[o]) for o in ("correct", "timeout", "skip"))
        rows.append(
            f"| {r.describe()} | {r.players} | {r.reveals_per_s:.1f} "
            f"| {ratio:.0%} | {r.latency_ms(50):.1f} | {r.latency_ms(99):.1f} "
            f"| {t.overload_503s} | {t.other_5xx} | {other} | {t.acked_points} "
            f"| {r.stored_points} | {outcomes} |"
        )
    return "\n".join(rows)


def api_cpu_ms_per_reveal(r: StepResult, bare: BareModel) -> float:
    """The API processes' own CPU per reveal: all of it with workers; in-process, less what the
    bare model spends on the images and passes the API ran."""
    model_ms = 0.0 if r.config.workers else bare.forward.of(r.images, r.passes)
    return (r.cpu_s["api"] * 1000 - model_ms) / r.reveals if r.reveals else 0.0


def cpu_table(results: list[StepResult], bare: dict[str, BareModel]) -> str:
    rows = [
        "| configuration | players | API per reveal | API's own per reveal (model excluded) "
        "| API per request | model process per image "
        "| images per forward pass | images scored/s | PostgreSQL per reveal "
        "| generator per request | cores: API / worker / PostgreSQL / generator "
        "| points stored/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        model = r.cpu_ms_per("worker" if r.config.workers else "api", r.images)
        cores = " / ".join(f"{r.cpu_s[g] / r.wall_s:.2f}" for g in CPU_GROUPS)
        rows.append(
            f"| {r.describe()} | {r.players} | {r.cpu_ms_per('api', r.reveals):.2f} "
            f"| {api_cpu_ms_per_reveal(r, bare[r.config.name]):.2f} "
            f"| {r.cpu_ms_per('api', r.tally.requests):.2f} | {model:.2f} "
            f"| {r.images / r.passes if r.passes else 0:.1f} | {r.images / r.wall_s:.1f} "
            f"| {r.cpu_ms_per('postgres', r.reveals):.2f} "
            f"| {r.cpu_ms_per('generator', r.tally.requests):.2f} | {cores} "
            f"| {r.points_stored_per_s:.0f} |"
        )
    return "\n".join(rows)


def sizing_inputs(results: list[StepResult], bare: dict[str, BareModel], write: WriteRate) -> str:
    """The per-unit costs a deployment is sized from (see the README), from this run: the API's
    and PostgreSQL's from the worker steps that shed nothing (no 503: under overload, work
    answered too late counts without a reveal), the worker's from its fullest batches."""
    remote = [r for r in results if r.config.workers and r.reveals]
    if not remote:
        return "(sizing needs a configuration with a worker)"
    calm = [r for r in remote if not r.tally.overload_503s] or remote
    api_ms = float(np.median([r.cpu_ms_per("api", r.reveals) for r in calm]))
    busiest = max(remote, key=lambda r: r.images / r.passes if r.passes else 0)
    model_ms = busiest.cpu_ms_per("worker", busiest.images)
    bare_ms = bare[busiest.config.name].cpu_ms_per_image
    lone = min(remote, key=lambda r: r.players)
    postgres_ms = float(np.median([r.cpu_ms_per("postgres", r.reveals) for r in calm]))
    points = sum(r.tally.acked_points for r in calm) / sum(r.reveals for r in calm)
    return "\n".join(
        [
            f"- API: {api_ms:.2f} CPU ms per reveal (median over the worker steps without a 503; "
            f"all of a player's requests counted): {1000 / api_ms:.0f} reveals/s per API core.",
            f"- Worker: {model_ms:.2f} CPU ms per image at {busiest.images / busiest.passes:.1f} "
            f"images per pass ({busiest.config.name}, {busiest.players} players); the bare model "
            f"{bare_ms:.2f}: {model_ms - bare_ms:.2f} ms per image around the model.",
            f"- A player alone: {lone.reveals_per_s / lone.players:.2f} reveals/s "
            f"({points:.1f} points per reveal), pauses between rounds included.",
            f"- PostgreSQL: {postgres_ms:.2f} backend CPU ms per reveal in play; the write "
            f"stress stored {write.points_per_s:.0f} points/s ({write.batches_per_s:.0f} "
            f"batches/s, {write.postgres_cpu_ms_per_batch:.2f} backend CPU ms each).",
        ]
    )


def print_report(
    results: list[StepResult], bare: dict[str, BareModel], write: WriteRate, load: list[tuple]
) -> None:
    print("\nBare model, ONNX Runtime, batch 8, measured before each configuration started:")
    for name, model in bare.items():
        print(
            f"- {name}: {model.images_per_s:.1f} images/s, {model.cpu_ms_per_image:.2f} CPU ms each"
            f"; a batch-1 pass {model.forward.first_ms:.2f} CPU ms, each further image "
            f"{model.forward.extra_ms:.2f}"
        )
    print()
    print(load_table(results, bare))
    print("\nCPU milliseconds (utime + stime from /proc), and the points stored per second:\n")
    print(cpu_table(results, bare))
    print(
        f"\nPostgreSQL write stress ({write.threads} threads, the reveal's store: the claim and "
        f"the insert in one statement, {write.points_per_batch} points a batch, "
        f"{'durable' if WRITE_RULES.durable else 'not waiting for the WAL'} as the game's "
        "default): "
        f"{write.batches_per_s:.0f} batches/s "
        f"= {write.points_per_s:.0f} points/s, {write.postgres_cpu_ms_per_batch:.2f} backend "
        f"CPU ms and {write.writer_cpu_ms_per_batch:.2f} writer CPU ms per batch."
    )
    print(
        "Load average (1, 5, 15 min) before: {} after: {}".format(
            *(" ".join(f"{x:.2f}" for x in avg) for avg in load)
        )
    )
    for r in results:
        if r.tally.errors:
            print(f"{r.config.name} {r.transport} {r.players} players: {dict(r.tally.errors)}")
    print("\nSizing inputs:\n" + sizing_inputs(results, bare, write))


def _positive_seconds(text: str) -> float:
    """A duration above zero (a step or the write stress of none would divide by zero, after
    minutes of the run)."""
    seconds = float(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"a number of seconds above 0, not {text}")
    return seconds


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument(
        "--transports",
        nargs="+",
        choices=TRANSPORTS,
        default=list(TRANSPORTS),
        help="how the batches go, each player count stepped with each in turn: HTTP requests, "
        "or each player's strokes' WebSocket",
    )
    parser.add_argument("--duration", type=_positive_seconds, default=20.0, help="seconds per step")
    parser.add_argument("--worker-threads", type=int, default=0, help="0: all cores")
    parser.add_argument("--bare-repeats", type=int, default=200)
    parser.add_argument("--write-threads", type=int, default=16)
    parser.add_argument("--write-seconds", type=_positive_seconds, default=8.0)
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--models-dir", type=Path, help="ONNX export cache (default: per run)")
    return parser.parse_args(argv)


def main() -> None:
    args = arguments()
    sample = os.environ.get("CLICKME_IMAGENET_SAMPLE")
    load = [os.getloadavg()]
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clickme-load-")))
        deploy = stack.enter_context(
            deployment(
                root,
                admin_url=args.postgres_admin_url,
                redis_url=args.redis_url,
                redis_prefix=f"bench-{secrets.token_hex(6)}",
                models_dir=args.models_dir or root / "models",
                images_dir=Path(sample) if sample else None,
            )
        )
        bare, results = {}, []
        for name in tqdm(args.configs, desc="configurations"):
            config = CONFIGS[name]
            bare[name] = bare_model(deploy, args.bare_repeats)
            with started(deploy, config, args.worker_threads) as running:
                urls = [api.url for api in running.apis]
                asyncio.run(run_players(urls, WARMUP_PLAYERS, WARMUP_S, seed=0, label="warm-up"))
                for players in args.players:
                    for transport in args.transports:
                        results.append(
                            measure_step(
                                deploy, running, config, players, args.duration, players, transport
                            )
                        )
        write = postgres_write_rate(deploy, args.write_threads, args.write_seconds)
    load.append(os.getloadavg())
    print_report(results, bare, write, load)


if __name__ == "__main__":
    main()
