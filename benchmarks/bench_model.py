"""Bare DNN cost: batch-1 forward latency and batch-8 throughput of each scorer backend.

Run: ``.venv/bin/python benchmarks/bench_model.py [--repeats N] [--model NAME]``.
"""

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import skimage.data
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from clickme.core.config import Settings
from clickme.core.metrics import cpu_by_thread_s
from clickme.images.transform import to_eval_space
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.scorer import Scorer, build_scorer

WARMUP_CALLS = 5
THROUGHPUT_BATCH = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def demo_input() -> np.ndarray:
    """The demo photo in evaluation space, uint8 (224, 224, 3)."""
    return to_eval_space(Image.fromarray(skimage.data.coffee()))


def _timed_calls_ms(scorer: Scorer, batch: np.ndarray, repeats: int) -> list[float]:
    for _ in range(WARMUP_CALLS):
        scorer.classify_batch_sync(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.classify_batch_sync(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def bare_forward_ms(scorer: Scorer, repeats: int) -> dict[str, float]:
    """Batch-1 latency of ``classify_batch_sync`` (normalise + forward + softmax), in ms."""
    timings = _timed_calls_ms(scorer, demo_input()[np.newaxis], repeats)
    return {"p50_ms": statistics.median(timings), "mean_ms": statistics.fmean(timings)}


def batch_throughput(scorer: Scorer, batch_size: int, repeats: int) -> float:
    """Images per second when classifying batches of ``batch_size``."""
    batch = np.repeat(demo_input()[np.newaxis], batch_size, axis=0)
    timings = _timed_calls_ms(scorer, batch, max(repeats // batch_size, 3))
    return batch_size * 1000 / statistics.median(timings)


def process_cpu_s(pid: int) -> float:
    """A process's utime + stime from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def schedstat_cpu_s(pid: int) -> float:
    """A process's CPU seconds on every thread, exact to the nanosecond (each thread's
    schedstat), where /proc's clock ticks round a few ms down to 0; 0 once it is gone."""
    return sum(cpu_by_thread_s(pid).values(), 0.0)


@dataclass(frozen=True)
class ForwardCpu:
    """The bare model's CPU per forward pass: a pass of one image, and each further image."""

    first_ms: float
    extra_ms: float

    def of(self, images: float, passes: float) -> float:
        """CPU ms the bare model spends on ``images`` in ``passes`` forward passes."""
        return passes * self.first_ms + max(0.0, images - passes) * self.extra_ms


def _cpu_ms_per_call(scorer: Scorer, batch: np.ndarray, repeats: int) -> float:
    before = time.process_time()
    _timed_calls_ms(scorer, batch, repeats)
    return (time.process_time() - before) * 1000 / (repeats + WARMUP_CALLS)


def forward_cpu(scorer: Scorer, repeats: int) -> ForwardCpu:
    """This process's CPU (every thread) per batch-1 pass and per further image in a pass of
    THROUGHPUT_BATCH: the model's own CPU, to take out of a server's."""
    image = demo_input()[np.newaxis]
    first = _cpu_ms_per_call(scorer, image, repeats)
    full = _cpu_ms_per_call(scorer, np.repeat(image, THROUGHPUT_BATCH, axis=0), repeats // 4)
    return ForwardCpu(first, max(0.0, full - first) / (THROUGHPUT_BATCH - 1))


@dataclass(frozen=True)
class PacedForward:
    """Batch-1 passes one every ``interval_s``, as a server runs them for players who paint:
    between passes the model's weights leave the caches and its threads sleep, so a paced pass
    takes longer and costs more CPU than one of a back-to-back loop."""

    interval_s: float
    p50_ms: float
    cpu_ms: float


def paced_forward(scorer: Scorer, interval_s: float, repeats: int) -> PacedForward:
    """The bare model's batch-1 latency p50 and CPU per pass (every thread of this process)
    with ``interval_s`` between the starts of passes."""
    image = demo_input()[np.newaxis]
    for _ in range(WARMUP_CALLS):
        scorer.classify_batch_sync(image)
    timings = []
    cpu_before = time.process_time()
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.classify_batch_sync(image)
        timings.append((time.perf_counter() - started) * 1000)
        time.sleep(max(0.0, interval_s - (time.perf_counter() - started)))
    cpu_ms = (time.process_time() - cpu_before) * 1000 / repeats
    return PacedForward(interval_s, statistics.median(timings), cpu_ms)


def _samples(url: str, family_name: str) -> list[Sample]:
    """The samples of one metric family in a process's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    families = text_string_to_metric_families(text)
    return [
        sample for family in families if family.name == family_name for sample in family.samples
    ]


def scored_so_far(url: str) -> tuple[float, float]:
    """(images, forward passes) a process's DNN has run, from its /metrics."""
    images = passes = 0.0
    for sample in _samples(url, "clickme_inference_batch_size"):
        if sample.name.endswith("_sum"):
            images += sample.value
        elif sample.name.endswith("_count"):
            passes += sample.value
    return images, passes


def thread_cpu_so_far_s(url: str) -> dict[str, float]:
    """A process's CPU seconds by thread role (``clickme_thread_cpu_seconds_total``)."""
    samples = _samples(url, "clickme_thread_cpu_seconds")
    return {sample.labels["role"]: sample.value for sample in samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    spec = get_model_spec(args.model)
    print(f"{spec.name} ({spec.version}), batch-1 latency over {args.repeats} calls")
    print(f"{'backend':<8} {'p50 ms':>8} {'mean ms':>8} {'batch-8 img/s':>14}")
    for backend in ("onnx", "torch"):
        scorer = build_scorer(Settings(scorer_backend=backend), spec)
        latency = bare_forward_ms(scorer, args.repeats)
        throughput = batch_throughput(scorer, THROUGHPUT_BATCH, args.repeats)
        print(
            f"{backend:<8} {latency['p50_ms']:>8.2f} {latency['mean_ms']:>8.2f} {throughput:>14.1f}"
        )


if __name__ == "__main__":
    main()
