"""Where the API's CPU goes under load, function by function, optionally beside older code.

    .venv/bin/python benchmarks/bench_functions.py [--players 8] [--duration 20] [--steps 2]
        [--before PATH] [--transports http ws] [--names NAME ...] [--models-dir DIR]

Builds a deployment as ``bench_load.py`` does (PostgreSQL, Redis, one API, one scoring worker;
the ImageNet sample when ``CLICKME_IMAGENET_SAMPLE`` names it, else the demo photos) and plays
``--players`` simulated players for ``--duration`` seconds a step. Inside the API process
``function_clock.py`` sums each named function's thread CPU (inclusive of what it calls), so a
change of 0.05 ms in one function shows, where ``bench_load.py``'s whole-process figure drifts
by more than that between runs. It prints each function's calls per reveal, its mean thread CPU
per call and its CPU per reveal, beside the API process's whole CPU per reveal in the same
windows.

With ``--before PATH`` (a checkout's ``backend`` folder, e.g. a ``git worktree`` of an older
commit) a second deployment runs that code at the same time and the steps alternate between the
two (before, this code, this code, before, ...), so both see the same machine. A name missing
from one side's code shows as ``missing`` there. With ``--transports http ws`` each code runs
twice, its players' batches over HTTP on one side and over the strokes' WebSocket on the other.
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import (
    CONFIGS,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    TRANSPORTS,
    WARMUP_PLAYERS,
    WARMUP_S,
    deployment,
    run_players,
    started,
)
from bench_model import process_cpu_s

CLOCK = Path(__file__).resolve().parent / "function_clock.py"
DUMP_TIMEOUT_S = 10.0
# What a round's requests run on the API's threads (the reveal's hop, a new round, its start
# call, a won round's record) and the parts of them that the performance passes changed.
DEFAULT_NAMES = (
    "clickme.game.reveal:_store_and_send",
    "clickme.players.ratelimit:enforce",
    "clickme.game.service:store_any_batch",
    "clickme.game.reveal:_grown",
    "clickme.scoring.remote:RedisScorer.send_view",
    "clickme.game.reveal:_record_success",
    "clickme.game.starts:new_round",
    "clickme.game.service:campaign_for_player",
    "clickme.game.service:start_round",
    "clickme.campaigns.service:pick_image",
    "clickme.game.starts:start_clock",
    "clickme.scoring.scorer:top_guesses",
    "clickme.game.fast_path:revealed_response",
    "clickme.core.logs:log_request",
)


@dataclass
class Side:
    """One deployment's API, its clock's folder, and what its steps summed."""

    name: str
    url: str
    pid: int
    folder: Path
    transport: str = "http"
    reveals: int = 0
    api_cpu_s: float = 0.0
    sums: dict[str, dict] = field(default_factory=dict)

    def command(self, what: str) -> None:
        (self.folder / what).touch()

    def dump(self) -> dict[str, dict]:
        """The clock's sums now (asked for and waited on)."""
        target = self.folder / f"clock-{self.pid}.json"
        target.unlink(missing_ok=True)
        self.command("dump")
        deadline = time.monotonic() + DUMP_TIMEOUT_S
        while not target.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: the API's function clock did not answer")
            time.sleep(0.05)
        return json.loads(target.read_text())

    def cleared(self) -> None:
        """The clock's sums zeroed (asked for, and waited on until its file is gone)."""
        self.command("clear")
        deadline = time.monotonic() + DUMP_TIMEOUT_S
        while (self.folder / "clear").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: the API's function clock did not clear")
            time.sleep(0.05)

    def step(self, players: int, duration_s: float, seed: int) -> None:
        self.cleared()
        cpu = process_cpu_s(self.pid)
        tally = asyncio.run(
            run_players([self.url], players, duration_s, seed, self.name, self.transport)
        )
        self.api_cpu_s += process_cpu_s(self.pid) - cpu
        self.reveals += len(tally.latencies_ms)
        for name, figures in self.dump().items():
            empty = {"state": figures["state"], "calls": 0, "cpu_ns": 0}
            summed = self.sums.setdefault(name, empty)
            summed["calls"] += figures["calls"]
            summed["cpu_ns"] += figures["cpu_ns"]


def clock_environment(folder: Path, names: list[str], pythonpath: str | None) -> dict[str, str]:
    """What makes ``clickme serve`` run with the clock: ``function_clock.py`` as the
    ``sitecustomize`` of a folder first on its path (then the code to run, if given)."""
    shutil.copy(CLOCK, folder / "sitecustomize.py")
    path = [str(folder)] + ([pythonpath] if pythonpath else [])
    return {
        "PYTHONPATH": os.pathsep.join(path),
        "CLICKME_FUNCTION_CLOCK_COMMAND": "serve",
        "CLICKME_FUNCTION_CLOCK_NAMES": ",".join(names),
        "CLICKME_FUNCTION_CLOCK_DIR": str(folder),
    }


@contextmanager
def side(
    name: str,
    pythonpath: str | None,
    names: list[str],
    models_dir: Path,
    images: Path | None,
    transport: str = "http",
) -> Iterator[Side]:
    """A deployment running the code on ``pythonpath`` (else this checkout's), with the clock
    in its API, warmed up."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-functions-")))
        deploy = stack.enter_context(
            deployment(
                root,
                admin_url=POSTGRES_ADMIN_URL,
                redis_url=REDIS_URL,
                redis_prefix=f"bench-functions-{secrets.token_hex(6)}",
                models_dir=models_dir,
                images_dir=images,
            )
        )
        folder = root / "clock"
        folder.mkdir()
        deploy = replace(deploy, env=deploy.env | clock_environment(folder, names, pythonpath))
        api = stack.enter_context(started(deploy, CONFIGS["worker"], 0)).apis[0]
        warm_up = run_players([api.url], WARMUP_PLAYERS, WARMUP_S, 0, "warm-up", transport)
        asyncio.run(warm_up)
        yield Side(name, api.url, api.popen.pid, folder, transport)


def report(sides: list[Side], names: list[str]) -> str:
    """Per function and side: calls per reveal, mean µs per call, CPU ms per reveal."""
    header = "| function | " + " | ".join(
        f"{s.name}: calls a reveal / µs a call / ms a reveal" for s in sides
    )
    lines = [header + " |", "| --- |" + " --- |" * len(sides)]
    for name in names:
        cells = []
        for s in sides:
            figures = s.sums.get(name, {"state": "missing", "calls": 0, "cpu_ns": 0})
            if figures["state"] != "wrapped":
                cells.append(figures["state"])
                continue
            calls, ns = figures["calls"], figures["cpu_ns"]
            per_call = f"{ns / calls / 1000:.0f}" if calls else "-"
            reveals = max(s.reveals, 1)
            cells.append(f"{calls / reveals:.3f} / {per_call} / {ns / 1e6 / reveals:.3f}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    whole = [f"{s.api_cpu_s * 1e3 / max(s.reveals, 1):.2f} ms ({s.reveals} reveals)" for s in sides]
    lines.append("| the API process, all threads | " + " | ".join(whole) + " |")
    return "\n".join(lines)


def _named(code: str, transport: str, transports: list[str]) -> str:
    return f"{code} ({transport})" if len(transports) > 1 else code


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds a step")
    parser.add_argument("--steps", type=int, default=2, help="steps on each side")
    parser.add_argument("--before", help="a backend folder to run beside this code (PYTHONPATH)")
    parser.add_argument(
        "--transports",
        nargs="+",
        choices=TRANSPORTS,
        default=["http"],
        help="the players' batches over HTTP, the strokes' WebSocket, or each on its own side",
    )
    parser.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES), help="module:function")
    parser.add_argument("--models-dir", type=Path, help="ONNX export cache (default: per run)")
    return parser.parse_args(argv)


def main() -> None:
    args = arguments()
    sample = os.environ.get("CLICKME_IMAGENET_SAMPLE")
    images = Path(sample) if sample else None
    with ExitStack() as stack:
        models_dir = args.models_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-functions-models-"))
        )
        codes = [("this code", None)]
        if args.before is not None:
            codes.insert(0, ("before", args.before))
        sides = [
            stack.enter_context(
                side(
                    _named(code, transport, args.transports),
                    path,
                    args.names,
                    models_dir,
                    images,
                    transport,
                )
            )
            for code, path in codes
            for transport in args.transports
        ]
        for step in tqdm(range(args.steps), desc="steps"):
            for s in sides if step % 2 == 0 else reversed(sides):
                s.step(args.players, args.duration, seed=step + 1)
    print(f"Thread CPU inside the API, {args.players} players, {args.steps} x {args.duration:g} s:")
    print(report(sides, args.names))


if __name__ == "__main__":
    main()
