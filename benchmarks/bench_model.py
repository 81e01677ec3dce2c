"""Bare DNN cost: batch-1 forward latency and batch-8 throughput of each scorer backend.

Run: ``.venv/bin/python benchmarks/bench_model.py [--repeats N] [--model NAME]``.
"""

import argparse
import statistics
import time

import numpy as np
import skimage.data
from PIL import Image

from clickme.core.config import Settings
from clickme.images.transform import to_eval_space
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.scorer import Scorer, build_scorer

WARMUP_CALLS = 5
THROUGHPUT_BATCH = 8


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
