"""The API process's CPU per request type, one request at a time, optionally beside older code.

    .venv/bin/python benchmarks/bench_requests.py [--cycles 200] [--pause-ms 20] [--before PATH]
        [--floor] [--sample]

Builds a deployment as ``bench_load.py`` does (PostgreSQL, Redis, the demo photos, one API and
one scoring worker) and plays one player's rounds, one request at a time with a pause after
each (20 ms: the request's work after its answer, logs and events, is counted with it; with
less, some of it may be counted with the next request): start a round, its start call, up to
three reveals, a skip. Around each request it reads the API process's CPU from
``/proc/<pid>/task/*/schedstat`` (nanoseconds on a CPU, each thread), so each request type gets
its median and mean CPU, and its median split by thread: the event loop (the main thread), the
other thread that spent the most on the request (for a reveal, the reveal thread that stored it
and sent it to the worker), the next one (for a reveal, before its answer was read on the
event loop, the scorer's answer reader), and the rest. Beside it, the CPU of the PostgreSQL
backends connected to the API's database over the same request (their schedstat; listed
before each request from ``pg_stat_activity``). After its first five rounds the player has
seen every demo photo: its rounds are repeats, as in ``bench_load.py``; with ``--sample`` the
deployment holds the ImageNet sample (``CLICKME_IMAGENET_SAMPLE``) instead, so that each new round
draws a photo the player has not seen, as most new rounds do. A process that has
idled for the pause wakes up slower than one kept busy: compare figures taken with the same
pause only.

With ``--before PATH`` (a checkout's ``backend`` folder, e.g. a ``git worktree`` of an older
commit) a second deployment runs that code (``PYTHONPATH``) at the same time, and the cycles
alternate between the two, so that both see the same machine: the machine's drift between runs
(tens of percent) is larger than most changes measured here.

With ``--floor`` a third side runs ``floor_app.py`` (uvicorn, httptools and uvloop as ``clickme
serve`` runs, and a reveal's round trips to PostgreSQL and Redis in one thread hop, nothing
else) and gets the same requests: what any Python request with those round trips costs on this
machine, beside what ClickMe's cost.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import sqlalchemy as sa
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_load import CONFIGS, POSTGRES_ADMIN_URL, REDIS_URL, backend_pids, deployment, started
from bench_model import schedstat_cpu_s

from clickme.core.metrics import cpu_by_thread_s
from tests.live_server import free_port, stop_process

FLOOR_START_TIMEOUT_S = 30.0

KINDS = ("start", "start call", "reveal", "skip")
REVEALS_PER_ROUND = 3
THREAD_SHARES = ("event loop", "busiest other thread", "next other thread", "the rest")


def thread_shares_ms(pid: int, before: dict[int, float], after: dict[int, float]) -> list[float]:
    """A request's CPU ms by ``THREAD_SHARES``: the main thread (the event loop), then the other
    threads, busiest first, from their CPU seconds before and after it."""
    spent = {tid: (seconds - before.get(tid, 0.0)) * 1000 for tid, seconds in after.items()}
    others = sorted((ms for tid, ms in spent.items() if tid != pid), reverse=True)
    others += [0.0, 0.0]
    return [spent.get(pid, 0.0), others[0], others[1], sum(others[2:])]


def postgres_cpu_s(backends: list[int]) -> dict[int, float]:
    """Each PostgreSQL backend's CPU seconds (exact to the nanosecond: schedstat)."""
    return {pid: schedstat_cpu_s(pid) for pid in backends}


def postgres_ms(before: dict[int, float], after: dict[int, float]) -> float:
    """The backends' CPU ms between two readings (one gone meanwhile: not counted)."""
    return sum(max(after[pid] - seconds, 0.0) for pid, seconds in before.items()) * 1000


@dataclass
class Side:
    """One deployment's API, its player's client and the CPU each request type cost it."""

    name: str
    client: httpx.Client
    pid: int
    pause_s: float
    engine: sa.Engine | None = None  # its database, whose backends' CPU is read too
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    shares_ms: dict[str, list[list[float]]] = field(default_factory=lambda: defaultdict(list))
    postgres_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def post(self, kind: str, path: str, body: dict | None = None) -> httpx.Response:
        backends = [] if self.engine is None else backend_pids(self.engine)
        postgres_before = postgres_cpu_s(backends)
        before = cpu_by_thread_s(self.pid)
        response = self.client.post(path, json=body)
        time.sleep(self.pause_s)
        shares = thread_shares_ms(self.pid, before, cpu_by_thread_s(self.pid))
        self.cpu_ms[kind].append(sum(shares))
        self.shares_ms[kind].append(shares)
        if self.engine is not None:
            self.postgres_ms[kind].append(postgres_ms(postgres_before, postgres_cpu_s(backends)))
        if response.status_code not in (200, 201):
            status = response.status_code
            raise RuntimeError(f"{self.name}: {path} answered {status}: {response.text}")
        return response

    def play_round(self) -> None:
        new_round = self.post("start", "/api/rounds", {"viewport_width": 1280}).json()
        round_id, image = new_round["round_id"], new_round.get("image")  # the floor's: none
        # the points' corner inside the photo: 100 px on every demo photo (and the floor's)
        corner = 100 if image is None else min(100, image["width"] // 3, image["height"] // 3)
        self.post("start call", f"/api/rounds/{round_id}/start")
        for seq in range(1, REVEALS_PER_ROUND + 1):
            points = [[corner + seq * 5 + k, corner + k, 50 * k] for k in range(6)]
            body = {"seq": seq, "points": points, "pointer_type": "mouse"}
            answer = self.post("reveal", f"/api/rounds/{round_id}/points", body).json()
            if answer["state"] != "playing":
                return
        self.post("skip", f"/api/rounds/{round_id}/skip")


def start_side(
    stack: ExitStack,
    name: str,
    pythonpath: str | None,
    models_dir: Path,
    pause_s: float,
    images: Path | None = None,
) -> Side:
    """A deployment (running the code on ``pythonpath`` if given; the photos in ``images``,
    else the demo's) with a consenting player."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-requests-{name}-"))
    deploy = stack.enter_context(
        deployment(
            root,
            admin_url=POSTGRES_ADMIN_URL,
            redis_url=REDIS_URL,
            redis_prefix=f"bench-requests-{name}-{os.getpid()}",
            models_dir=models_dir,
            images_dir=images,
        )
    )
    if pythonpath is not None:
        deploy = replace(deploy, env=deploy.env | {"PYTHONPATH": pythonpath})
    api = stack.enter_context(started(deploy, CONFIGS["worker"], 0)).apis[0]
    client = stack.enter_context(httpx.Client(base_url=api.url, timeout=30))
    side = Side(name, client, api.popen.pid, pause_s, deploy.engine)
    side.post("join", "/api/players", {"consent": True})
    first_round_admitted(client)
    return side


def sample_images() -> Path:
    """The ImageNet sample's folder (``CLICKME_IMAGENET_SAMPLE``)."""
    folder = os.environ.get("CLICKME_IMAGENET_SAMPLE", "")
    if not folder or not Path(folder).is_dir():
        raise SystemExit("--sample needs CLICKME_IMAGENET_SAMPLE: the ImageNet sample's folder")
    return Path(folder)


def first_round_admitted(client: httpx.Client, timeout_s: float = 30.0) -> None:
    """Until a new round is admitted (then skipped, not counted): the readiness check's first
    answers, slow while the worker warms up, can make the API refuse new rounds with 503
    ``scorer_busy`` for the seconds its answer rate remembers them."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.post("/api/rounds", json={"viewport_width": 1280})
        if response.status_code == 201:
            client.post(f"/api/rounds/{response.json()['round_id']}/skip")
            return
        if response.status_code != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"/api/rounds answered {response.status_code}: {response.text}")
        time.sleep(0.25)


def start_floor(
    stack: ExitStack,
    pause_s: float,
    database_url: str = POSTGRES_ADMIN_URL,
    redis_url: str = REDIS_URL,
) -> Side:
    """``floor_app.py`` under uvicorn as ``clickme serve`` runs (httptools on uvloop), its
    round trips to this PostgreSQL and Redis; answering once it does."""
    port = free_port()
    env = os.environ | {
        "CLICKME_FLOOR_DATABASE_URL": database_url,
        "CLICKME_FLOOR_REDIS_URL": redis_url,
    }
    command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port)]
    command += [
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    popen = subprocess.Popen(command, cwd=Path(__file__).resolve().parent, env=env)
    stack.callback(stop_process, popen)
    client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
    deadline = time.monotonic() + FLOOR_START_TIMEOUT_S
    while True:
        try:
            client.post("/api/players", json={"consent": True})
            break
        except httpx.TransportError:
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the floor app did not start") from None
            time.sleep(0.1)
    return Side("floor", client, popen.pid, pause_s)


def report(sides: list[Side]) -> str:
    header = "| request | " + " | ".join(f"{s.name}: median / mean CPU ms (n)" for s in sides)
    lines = [header + " |", "| --- |" + " --- |" * len(sides)]
    for kind in KINDS:
        cells = []
        for side in sides:
            values = side.cpu_ms[kind]
            cells.append(
                f"{statistics.median(values):.2f} / {statistics.mean(values):.2f} ({len(values)})"
                if values
                else "-"
            )
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_by_thread(sides: list[Side]) -> str:
    """Each request type's median CPU ms by ``THREAD_SHARES`` (the median of each share)."""
    lines = [
        "| request | side | " + " | ".join(THREAD_SHARES) + " |",
        "| --- | --- |" + " --- |" * len(THREAD_SHARES),
    ]
    for kind in KINDS:
        for side in sides:
            shares = side.shares_ms[kind]
            if shares:
                medians = [statistics.median(column) for column in zip(*shares, strict=True)]
                cells = " | ".join(f"{ms:.2f}" for ms in medians)
                lines.append(f"| {kind} | {side.name} | {cells} |")
    return "\n".join(lines)


def report_postgres(sides: list[Side]) -> str:
    """Each request type's PostgreSQL CPU (the API's database's backends), median / mean."""
    measured = [side for side in sides if side.engine is not None]
    header = "| request | " + " | ".join(f"{s.name}: median / mean ms" for s in measured)
    lines = [header + " |", "| --- |" + " --- |" * len(measured)]
    for kind in KINDS:
        cells = [
            f"{statistics.median(values):.2f} / {statistics.mean(values):.2f}" if values else "-"
            for values in (side.postgres_ms[kind] for side in measured)
        ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="rounds played on each side")
    parser.add_argument("--before", help="a backend folder to run beside this code (PYTHONPATH)")
    parser.add_argument("--models-dir", type=Path, help="ONNX export cache (default: per run)")
    parser.add_argument("--pause-ms", type=float, default=20.0, help="idle after each request")
    parser.add_argument("--floor", action="store_true", help="beside floor_app.py (see above)")
    parser.add_argument("--sample", action="store_true", help="the ImageNet sample (see above)")
    args = parser.parse_args()
    models_dir = args.models_dir or Path(tempfile.mkdtemp(prefix="bench-requests-models-"))
    pause_s = args.pause_ms / 1000
    images = sample_images() if args.sample else None
    with ExitStack() as stack:
        sides = [start_side(stack, "this code", None, models_dir, pause_s, images)]
        if args.before is not None:
            before = start_side(stack, "before", args.before, models_dir, pause_s, images)
            sides.insert(0, before)
        if args.floor:
            sides.append(start_floor(stack, pause_s))
        for cycle in tqdm(range(args.cycles), desc="rounds", unit="round"):
            for side in sides if cycle % 2 == 0 else reversed(sides):
                side.play_round()
    print(report(sides))
    print()
    print(f"Median CPU ms by thread ({args.pause_ms:g} ms idle after each request):")
    print(report_by_thread(sides))
    print()
    print("PostgreSQL's CPU ms per request (the backends of the API's database):")
    print(report_postgres(sides))


if __name__ == "__main__":
    main()
