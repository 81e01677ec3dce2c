"""The API process's CPU per request type, one request at a time, optionally beside older code.

    .venv/bin/python benchmarks/bench_requests.py [--cycles 200] [--before PATH]

Builds a deployment as ``bench_load.py`` does (PostgreSQL, Redis, the demo photos, one API and
one scoring worker) and plays one player's rounds, one request at a time with a 20 ms pause
after each: start a round, its start call, up to three reveals, a skip. Around each request it
reads the API process's CPU from ``/proc/<pid>/task/*/schedstat`` (nanoseconds on a CPU, every
thread), so each request type gets its median and mean CPU. After its first five rounds the
player has seen every demo photo: its rounds are repeats, as in ``bench_load.py``.

With ``--before PATH`` (a checkout's ``backend`` folder, e.g. a ``git worktree`` of an older
commit) a second deployment runs that code (``PYTHONPATH``) at the same time, and the cycles
alternate between the two, so that both see the same machine: the machine's drift between runs
(tens of percent) is larger than most changes measured here.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_load import CONFIGS, POSTGRES_ADMIN_URL, REDIS_URL, deployment, started
from bench_model import schedstat_cpu_s

KINDS = ("start", "start call", "reveal", "skip")
PAUSE_S = 0.02
REVEALS_PER_ROUND = 3


@dataclass
class Side:
    """One deployment's API, its player's client and the CPU each request type cost it."""

    name: str
    client: httpx.Client
    pid: int
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def post(self, kind: str, path: str, body: dict | None = None) -> httpx.Response:
        before = schedstat_cpu_s(self.pid)
        response = self.client.post(path, json=body)
        time.sleep(PAUSE_S)  # the request's work after its answer (logs, events) counted too
        self.cpu_ms[kind].append((schedstat_cpu_s(self.pid) - before) * 1000)
        if response.status_code not in (200, 201):
            status = response.status_code
            raise RuntimeError(f"{self.name}: {path} answered {status}: {response.text}")
        return response

    def play_round(self) -> None:
        round_id = self.post("start", "/api/rounds", {"viewport_width": 1280}).json()["round_id"]
        self.post("start call", f"/api/rounds/{round_id}/start")
        for seq in range(1, REVEALS_PER_ROUND + 1):
            points = [[100 + seq * 5 + k, 100 + k, 50 * k] for k in range(6)]
            body = {"seq": seq, "points": points, "pointer_type": "mouse"}
            answer = self.post("reveal", f"/api/rounds/{round_id}/points", body).json()
            if answer["state"] != "playing":
                return
        self.post("skip", f"/api/rounds/{round_id}/skip")


def start_side(stack: ExitStack, name: str, pythonpath: str | None, models_dir: Path) -> Side:
    """A deployment (running the code on ``pythonpath`` if given) with a consenting player."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-requests-{name}-"))
    deploy = stack.enter_context(
        deployment(
            root,
            admin_url=POSTGRES_ADMIN_URL,
            redis_url=REDIS_URL,
            redis_prefix=f"bench-requests-{name}-{os.getpid()}",
            models_dir=models_dir,
            images_dir=None,
        )
    )
    if pythonpath is not None:
        deploy = replace(deploy, env=deploy.env | {"PYTHONPATH": pythonpath})
    api = stack.enter_context(started(deploy, CONFIGS["worker"], 0)).apis[0]
    client = stack.enter_context(httpx.Client(base_url=api.url, timeout=30))
    side = Side(name, client, api.popen.pid)
    side.post("join", "/api/players", {"consent": True})
    return side


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="rounds played on each side")
    parser.add_argument("--before", help="a backend folder to run beside this code (PYTHONPATH)")
    parser.add_argument("--models-dir", type=Path, help="ONNX export cache (default: per run)")
    args = parser.parse_args()
    models_dir = args.models_dir or Path(tempfile.mkdtemp(prefix="bench-requests-models-"))
    with ExitStack() as stack:
        sides = [start_side(stack, "this code", None, models_dir)]
        if args.before is not None:
            sides.insert(0, start_side(stack, "before", args.before, models_dir))
        for cycle in tqdm(range(args.cycles), desc="rounds", unit="round"):
            for side in sides if cycle % 2 == 0 else reversed(sides):
                side.play_round()
    print(report(sides))


if __name__ == "__main__":
    main()
