"""End-to-end reveal latency over real HTTP beside the bare model's forward time, in one run.

Starts `clickme serve` (embedded default: SQLite, in-process ONNX scoring) on a free port with
the demo photos, plays simulated players that paint a few points every 200 ms, and prints:
the bare forward time per backend (batch 1), and the reveal latency p50/p99 for 1 and 8
concurrent players, with the server's own overhead (end-to-end p50 minus bare ONNX forward)
and its own CPU per reveal: the server process's utime + stime over the step (from /proc) less
what the bare model, measured in this process, spends on the images and passes the server ran;
and, read apart, the CPU of the server's own threads (the event loop, the reveal threads and
the rest) against its DNN's (the batching thread and the runtime's pool), from its /metrics;
and the client's own CPU per reveal (this process's player thread), which the latency includes.
Each player count is played twice, its batches POSTed and then over the strokes' WebSocket
(``--transports``), as the game page sends them; the socket's answers carry no Server-Timing, so
its store and DNN columns are empty.
The bare model is measured twice: back to back, and paced as the step's passes come (one every
200 ms divided by the players), which is what a server facing painting players can do at best.
"""

import argparse
import http.client
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import (
    ForwardCpu,
    PacedForward,
    bare_forward_ms,
    forward_cpu,
    paced_forward,
    process_cpu_s,
    scored_so_far,
    thread_cpu_so_far_s,
)

from clickme.campaigns.service import DEFAULT_CAMPAIGN_SLUG
from clickme.core.config import Settings
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.scorer import build_scorer

REPO_ROOT = Path(__file__).resolve().parents[1]
BATCH_INTERVAL_S = 0.2
PLAYER_STEPS = (1, 8)
TRANSPORTS = ("http", "ws")
POINTS_PER_BATCH = 4
# The server's thread roles (``clickme_thread_cpu_seconds_total``): its own, and its DNN's.
API_ROLES = ("main", "reveal", "other")
DNN_ROLES = ("scorer", "native")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "CLICKME_DATA_DIR": str(data_dir),
        # Every simulated player comes from 127.0.0.1: lift the per-address limits.
        "CLICKME_RATE_ROUNDS_PER_MIN": "1000000",
        "CLICKME_RATE_PLAYERS_PER_MIN": "1000000",
    }
    clickme = [sys.executable, "-m", "clickme.cli"]
    subprocess.run([*clickme, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([*clickme, "images", "import-demo"], env=env, check=True, capture_output=True)
    # The server logs a line per request: to a file (a pipe nobody reads fills up after some
    # 600 requests, and the server then blocks on its next log line).
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*clickme, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        raise RuntimeError(f"server did not start: {log_path.read_text()[-2000:]}")
    # As a deployment does before players come (bench_load too; the server made the default
    # campaign on start): the photos prepared for revealing, kept in the data dir, else the
    # first reveal on each photo prepares it (about 10 ms of the server's CPU).
    prepare = [*clickme, "images", "prepare", "--campaign", DEFAULT_CAMPAIGN_SLUG]
    subprocess.run(prepare, env=env, check=True, capture_output=True)
    return server


def server_timing(header: str) -> tuple[float, float]:
    """(store ms, dnn ms) from the reveal's Server-Timing header."""
    durations = dict(part.split(";dur=") for part in header.split(", "))
    return float(durations["store"]), float(durations["dnn"])


@dataclass
class Player:
    """A simulated player on one keep-alive connection; paints in a small corner, batch by batch."""

    port: int
    rng: random.Random
    transport: str = "http"  # the batches': POSTed, or over the strokes' socket ("ws")
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[tuple[float, float]] = field(default_factory=list)
    # this client's own CPU per answered reveal (building the request, reading the answer)
    client_cpu_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.cookie = ""
        self.socket: ClientConnection | None = None
        self.sockets = ExitStack()  # the socket's context, closed with ``close``
        self.round: dict | None = None
        self.seq = 0
        self.t_ms = 0

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
        """The status and JSON answer; on a connection the server closed while it idled past
        its keep-alive (a round's batches over the socket), sent again on a new one, as
        browsers do."""
        try:
            return self._exchange(method, path, body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()
            return self._exchange(method, path, body)

    def _exchange(self, method: str, path: str, body: object | None) -> tuple[int, dict]:
        headers = {"content-type": "application/json", "cookie": self.cookie}
        self.connection.request(
            method, path, json.dumps(body) if body is not None else None, headers
        )
        response = self.connection.getresponse()
        payload = json.loads(response.read() or b"{}")
        cookie = response.getheader("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        self.last_timing = response.getheader("server-timing") or ""
        return response.status, payload

    def new_round(self) -> None:
        status, payload = self.call("POST", "/api/rounds", {"viewport_width": 1280})
        if status == 401 or (status == 409 and payload["error"]["code"] == "no_images_left"):
            self.cookie = ""
            self.close()  # the socket's player is its handshake's
            self.call("POST", "/api/players", {"consent": True})
            status, payload = self.call("POST", "/api/rounds", {"viewport_width": 1280})
        self.call("POST", f"/api/rounds/{payload['round_id']}/start")  # the photo is shown
        self.round, self.seq, self.t_ms = payload, 0, 0

    def reveal(self) -> None:
        if self.round is None:
            self.new_round()
        width, height = self.round["image"]["width"], self.round["image"]["height"]
        points = [
            [self.rng.uniform(0, width * 0.15), self.rng.uniform(0, height * 0.15), self.t_ms]
            for _ in range(POINTS_PER_BATCH)
        ]
        self.seq += 1
        self.t_ms += int(BATCH_INTERVAL_S * 1000)
        started, cpu_started = time.perf_counter(), time.thread_time()
        status, payload = self.send_points({"seq": self.seq, "points": points})
        elapsed = (time.perf_counter() - started) * 1000
        if status == 200:
            self.latencies_ms.append(elapsed)
            self.client_cpu_ms.append((time.thread_time() - cpu_started) * 1000)
            timing = server_timing(self.last_timing) if self.last_timing else (math.nan, math.nan)
            self.server_ms.append(timing)
            if payload["state"] != "playing":
                self.round = None
        elif status == 409:
            self.round = None
        else:
            self.errors[f"{status} {payload.get('error', {}).get('code', '')}"] += 1
            self.round = None

    def send_points(self, batch: dict) -> tuple[int, dict]:
        """The batch's status and answer, POSTed or over the player's strokes' socket."""
        assert self.round is not None
        round_id = self.round["round_id"]
        if self.transport == "http":
            return self.call("POST", f"/api/rounds/{round_id}/points", batch)
        if self.socket is None:
            url = f"ws://127.0.0.1:{self.port}/api/strokes"
            opened = connect(url, additional_headers={"Cookie": self.cookie}, compression=None)
            self.socket = self.sockets.enter_context(opened)
        self.socket.send(json.dumps({"round_id": round_id, **batch}))
        answer = json.loads(self.socket.recv(timeout=30))
        self.last_timing = ""
        return answer["status"], answer["body"]

    def close(self) -> None:
        self.sockets.close()
        self.socket = None


class Played(NamedTuple):
    """What the players saw: each answered reveal's latency, its Server-Timing (store, dnn)
    and the client's own CPU for it (all ms), and the errors by status and code."""

    latencies: np.ndarray
    server: np.ndarray
    client_cpu: np.ndarray
    errors: Counter[str]


def play(port: int, players: int, reveals_each: int, seed: int, transport: str = "http") -> Played:
    """Each player sends a batch every 200 ms (or straight after a slower answer)."""
    crowd = [Player(port, random.Random(seed + i), transport) for i in range(players)]
    for player in crowd:
        player.new_round()
    bar = tqdm(total=players * reveals_each, desc=f"{players} player(s)", leave=False)

    def run(player: Player) -> None:
        time.sleep(player.rng.uniform(0, BATCH_INTERVAL_S))
        for _ in range(reveals_each):
            started = time.perf_counter()
            player.reveal()
            bar.update()
            time.sleep(max(0.0, BATCH_INTERVAL_S - (time.perf_counter() - started)))

    threads = [threading.Thread(target=run, args=(player,)) for player in crowd]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for player in crowd:
        player.close()
    bar.close()
    return Played(
        np.concatenate([np.array(p.latencies_ms) for p in crowd]),
        np.concatenate([np.array(p.server_ms).reshape(-1, 2) for p in crowd]),
        np.concatenate([np.array(p.client_cpu_ms) for p in crowd]),
        sum((p.errors for p in crowd), Counter()),
    )


@dataclass(frozen=True)
class Step:
    played: Played
    cpu_ms: float  # the server process's CPU over the step
    images: float
    passes: float
    by_role_ms: dict[str, float]  # the server's CPU over the step by thread role

    def own_cpu_ms_per_reveal(self, model: ForwardCpu) -> float:
        """The server's CPU per reveal less the bare model's for what it classified."""
        return (self.cpu_ms - model.of(self.images, self.passes)) / self.reveals

    def role_ms_per_reveal(self, *roles: str) -> float:
        return sum(self.by_role_ms.get(role, 0.0) for role in roles) / self.reveals

    @property
    def reveals(self) -> int:
        """The answered reveals (at least 1, to divide by)."""
        return max(1, len(self.played.latencies))


def measured_play(
    server: subprocess.Popen, port: int, players: int, reveals: int, transport: str = "http"
) -> Step:
    """``play``, with the server's CPU and its DNN's images and passes over it."""
    url = f"http://127.0.0.1:{port}"
    cpu_before, (images, passes) = process_cpu_s(server.pid), scored_so_far(url)
    roles_before = thread_cpu_so_far_s(url)
    played = play(port, players, reveals, players, transport)
    cpu_ms = (process_cpu_s(server.pid) - cpu_before) * 1000
    roles = thread_cpu_so_far_s(url)
    by_role_ms = {role: (roles[role] - roles_before.get(role, 0.0)) * 1000 for role in roles}
    images_after, passes_after = scored_so_far(url)
    return Step(played, cpu_ms, images_after - images, passes_after - passes, by_role_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reveals", type=int, default=150, help="reveal requests per player")
    parser.add_argument("--forward-repeats", type=int, default=200)
    parser.add_argument("--paced-repeats", type=int, default=50, help="paced passes per step")
    parser.add_argument("--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS))
    args = parser.parse_args()

    forward = {}
    paced: dict[int, PacedForward] = {}
    spec = get_model_spec(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as models_dir:
        for backend in ("onnx", "torch"):
            scorer = build_scorer(Settings(data_dir=Path(models_dir), scorer_backend=backend), spec)
            forward[backend] = bare_forward_ms(scorer, args.forward_repeats)
            if backend == "onnx":
                model_cpu = forward_cpu(scorer, args.forward_repeats)
                for n in PLAYER_STEPS:
                    paced[n] = paced_forward(scorer, BATCH_INTERVAL_S / n, args.paced_repeats)
            scorer.close()

    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        server = start_server(Path(data_dir), port)
        try:
            play(port, 1, 20, seed=0)  # warm-up: caches, connections
            results = {
                (n, transport): measured_play(server, port, n, args.reveals, transport)
                for n in PLAYER_STEPS
                for transport in args.transports
            }
        finally:
            server.terminate()
            server.wait(timeout=30)

    print("\nBare model forward, batch 1 (ms)")
    print(f"{'backend':<10}{'p50':>8}{'mean':>8}")
    for name, figures in forward.items():
        print(f"{name:<10}{figures['p50_ms']:>8.2f}{figures['mean_ms']:>8.2f}")
    bare = forward["onnx"]["p50_ms"]
    print(
        f"ONNX CPU: {model_cpu.first_ms:.2f} ms per batch-1 pass, {model_cpu.extra_ms:.2f} ms "
        "per further image in a pass"
    )
    for figures in paced.values():
        print(
            f"ONNX paced, a pass every {figures.interval_s * 1000:.0f} ms: p50 "
            f"{figures.p50_ms:.2f} ms, {figures.cpu_ms:.2f} CPU ms per pass"
        )
    print("\nReveal, POSTed or over the socket (ONNX Runtime, SQLite, in-process scoring; ms)")
    print(
        f"{'players':<9}{'via':>5}{'reveals':>8}{'errors':>7}{'p50':>8}{'p99':>8}{'p50 - bare':>12}"
        f"{'p50 / bare':>11}{'- paced':>9}{'store p50':>11}{'dnn p50':>9}{'img/pass':>9}"
        f"{'own CPU':>9}{'vs paced':>10}{'API thr':>9}{'DNN thr':>9}{'client':>8}"
    )
    for (players, transport), step in results.items():
        played = step.played
        p50, p99 = np.percentile(played.latencies, [50, 99])
        store, dnn = np.median(played.server, axis=0)  # NaN over the socket: printed so
        per_pass = step.images / step.passes if step.passes else 0.0
        paced_cpu = ForwardCpu(paced[players].cpu_ms, model_cpu.extra_ms)
        print(
            f"{players:<9}{transport:>5}{len(played.latencies):>8}{played.errors.total():>7}{p50:>8.2f}{p99:>8.2f}"
            f"{p50 - bare:>12.2f}{p50 / bare:>11.2f}{p50 - paced[players].p50_ms:>9.2f}"
            f"{store:>11.2f}{dnn:>9.2f}{per_pass:>9.2f}"
            f"{step.own_cpu_ms_per_reveal(model_cpu):>9.2f}"
            f"{step.own_cpu_ms_per_reveal(paced_cpu):>10.2f}"
            f"{step.role_ms_per_reveal(*API_ROLES):>9.2f}{step.role_ms_per_reveal(*DNN_ROLES):>9.2f}"
            f"{np.median(played.client_cpu):>8.2f}"
            f"  {dict(played.errors) or ''}"
        )
    print("\nThe server's CPU per reveal by thread role (ms)")
    roles = sorted({role for step in results.values() for role in step.by_role_ms})
    print(f"{'players':<9}{'via':>5}" + "".join(f"{role:>9}" for role in roles))
    for (players, transport), step in results.items():
        cells = "".join(f"{step.role_ms_per_reveal(r):>9.2f}" for r in roles)
        print(f"{players:<9}{transport:>5}" + cells)
    print(
        "via: the batches POSTed (http) or over the strokes' WebSocket (ws);\n"
        "store: the server's own work before the DNN (validate, commit the batch, render the "
        "mask);\ndnn: the wait for the micro-batched forward pass (both from Server-Timing, "
        "which the socket's answers do not carry: nan);\n"
        "- paced: p50 less the bare pass paced as the step's passes come;\n"
        "own CPU: the server process's CPU ms per reveal less the bare model's for its passes "
        "(back to back; vs paced: a pass costing what a paced one does);\n"
        "API thr: the CPU ms per reveal of the server's own threads (the event loop, the reveal "
        "threads, the rest), read apart from\nDNN thr: its DNN's (the batching thread, with the "
        "normalisation and softmax the bare model has too, and the runtime's pool);\n"
        "client: this benchmark's own CPU p50 per reveal in its player's thread (the request "
        "made, the answer read), inside p50 and not the server's."
    )
    print(
        "Load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )


if __name__ == "__main__":
    main()
