"""The CUDA paths measured side by side on one device: the bare forward, the views drawn there, a
GPU worker's batches, and a harmonizer step in bfloat16 against float32.

    .venv/bin/python benchmarks/bench_device.py [--device cuda] [--batch 32] [--repeats 30]

1. The bare forward: ``TorchScorer`` on the device, batch 1 and batch ``--batch``: p50 ms and
   images/s (probabilities back on the host, as the worker needs them).
2. The views: ``--batch`` reveal views (the demo photos, strokes of ``--points`` points, the
   default campaign's rule) drawn with torch on the device (``compose_views``), against numpy on
   this CPU as a CPU worker draws them (``ViewComposer.draw``, one view after another): ms a
   batch, and the most a pixel differs between the two (grey levels; at most 1 is right).
3. A GPU worker's step: a batch of ``--batch`` view requests scored as ``ScoringWorker`` scores a
   stream's batch (views drawn on the device, one forward pass, each answer encoded), no Redis:
   images/s, and its ratio to the bare forward of the same batch, which is what the reveal adds
   on the worker.
4. A harmonizer step: EfficientNet-Lite0 fine-tuned on ``--train-batch`` images with maps
   (``alignment.train.train_step``, gradient saliency and its double backward), ms a step with
   bfloat16 autocast (the default on CUDA) against float32.

Without CUDA, ``--device cpu`` runs the same measures (the worker then draws its views with
numpy, as a CPU worker does, and the harmonizer runs in float32 only: the bfloat16 autocast is
CUDA's); ``tests/test_bench_device.py`` runs it so, small. On a lent GPU machine, whose Python
lacks some of this project's packages, ``scripts/device_check.sh`` runs it (see there).
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clickme.alignment.train import (
    HarmonizeConfig,
    fine_tuning_mode,
    train_step,
    trainable_parameters,
)
from clickme.campaigns.schemas import CampaignCreate
from clickme.campaigns.service import rules_from_settings
from clickme.core.config import Settings
from clickme.images.service import DEMO_PHOTOS
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.remote import ScoreRequest
from clickme.scoring.reveal import PreparedImageCache, RevealRule, RevealView, ViewComposer
from clickme.scoring.scorer import TorchScorer
from clickme.scoring.torch_views import compose_views
from clickme.scoring.worker import ScoringWorker

WARMUP = 3
UNUSED_REDIS = "redis://127.0.0.1:1/0"  # the worker's client is made, never used: no Redis here


@dataclass(frozen=True)
class Timing:
    """The p50 of one call, in ms, and what one call handles."""

    p50_ms: float
    items: int

    @property
    def per_second(self) -> float:
        return self.items / (self.p50_ms / 1000)


def timed(call: Callable[[], object], device: torch.device, repeats: int, items: int) -> Timing:
    """``call``'s p50 after a warm-up, the device synchronised around each call."""
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - started) * 1000)
    return Timing(statistics.median(times), items)


def default_rule() -> RevealRule:
    """The reveal rule a new campaign gets when its settings leave it out."""
    defaults = {name: field.default for name, field in CampaignCreate.model_fields.items()}
    return rules_from_settings(defaults).reveal


def demo_folder(folder: Path) -> list[str]:
    """The demo photos (shipped inside scikit-image) as files in ``folder``: their names."""
    names = []
    for photo in DEMO_PHOTOS:
        name = f"{photo.name}.png"
        Image.open(photo.path).convert("RGB").save(folder / name)
        names.append(name)
    return names


def views(names: list[str], composer: ViewComposer, count: int, points: int) -> list[RevealView]:
    """``count`` views over the photos, each a wandering stroke of ``points`` native pixels."""
    rng = np.random.default_rng(0)
    rule = default_rule()
    made = []
    for i in range(count):
        name = names[i % len(names)]
        photo = composer.prepared(RevealView(name, rule, np.zeros((0, 2), np.float32)))
        steps = rng.normal(0, 0.03 * min(photo.width, photo.height), size=(points, 2))
        stroke = np.add(steps.cumsum(axis=0), (photo.width / 2, photo.height / 2))
        made.append(RevealView(name, rule, stroke.astype(np.float32)))
    return made


def most_apart(on_device: np.ndarray, composer: ViewComposer, batch: list[RevealView]) -> int:
    """The largest difference, in grey levels, between the device's views and numpy's."""
    drawn = np.stack([composer.draw(view)[0] for view in batch])
    return int(np.abs(on_device.astype(int) - drawn.astype(int)).max())


def worker_step(device: str, scorer: TorchScorer, composer: ViewComposer) -> ScoringWorker:
    settings = Settings(redis_url=UNUSED_REDIS, scorer_device=device, scorer_backend="torch")
    return ScoringWorker(settings, scorer, "bench-device", composer)


def requests_for(batch: list[RevealView]) -> list[ScoreRequest]:
    deadline_ms = int(time.time() * 1000) + 3_600_000
    return [
        ScoreRequest(i.to_bytes(16, "big"), b"bench", deadline_ms, view, reports_share=True)
        for i, view in enumerate(batch)
    ]


def harmonizer_step_ms(device: torch.device, batch_size: int, repeats: int, bf16: bool) -> float:
    """One fine-tuning step of EfficientNet-Lite0 on random images with blob maps, p50 ms."""
    spec = get_model_spec(DEFAULT_MODEL)
    config = HarmonizeConfig(device=str(device), mixed_precision=bf16, batch_size=batch_size)
    model = fine_tuning_mode(spec.build().to(device))
    optimizer = torch.optim.Adam(trainable_parameters(model, config), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, 224, 224, generator=generator)
    rows, cols = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    blob = torch.exp(-((rows - 80) ** 2 + (cols - 112) ** 2) / 800)
    maps = blob.expand(batch_size, 1, 224, 224).contiguous()
    labels = torch.arange(batch_size) % 1000
    has_map = torch.ones(batch_size, dtype=torch.bool)
    batch = (images, maps, labels, has_map)
    step = timed(
        lambda: train_step(model, spec.preprocessing, batch, optimizer, config),
        device, repeats, batch_size,
    )  # fmt: skip
    return step.p50_ms


@dataclass(frozen=True)
class DeviceFigures:
    device: str
    bare_one: Timing
    bare: Timing
    views_on_device: Timing
    views_on_cpu: Timing
    worker: Timing
    most_apart: int
    harmonizer_ms: dict[str, float]  # by precision


def measure(args: argparse.Namespace) -> DeviceFigures:
    """Every measure, side by side in this process."""
    device = torch.device(args.device)
    scorer = TorchScorer(get_model_spec(DEFAULT_MODEL), args.device, args.batch, max_wait_ms=0)
    one = np.zeros((1, 224, 224, 3), np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        composer = ViewComposer(Path(folder), PreparedImageCache(len(DEMO_PHOTOS)))
        batch = views(demo_folder(Path(folder)), composer, args.batch, args.points)
        prepared = [composer.prepared(view) for view in batch]
        images = np.stack([composer.draw(view)[0] for view in batch])
        worker = worker_step(args.device, scorer, composer)
        requests = requests_for(batch)

        def clock(call: Callable[[], object], items: int = len(batch)) -> Timing:
            return timed(call, device, args.repeats, items)

        figures = DeviceFigures(
            device=device_name(device),
            bare_one=clock(lambda: scorer.classify_batch_sync(one), 1),
            bare=clock(lambda: scorer.classify_batch_sync(images)),
            views_on_device=clock(lambda: compose_views(prepared, batch, device)),
            views_on_cpu=clock(lambda: [composer.draw(view) for view in batch]),
            worker=clock(lambda: worker.score(requests)),
            most_apart=most_apart(compose_views(prepared, batch, device)[0], composer, batch),
            harmonizer_ms={
                "bfloat16 autocast" if bf16 else "float32": harmonizer_step_ms(
                    device, args.train_batch, args.train_repeats, bf16
                )
                for bf16 in ((True, False) if device.type == "cuda" else (False,))
            },
        )  # fmt: skip
    return figures


def report(figures: DeviceFigures, args: argparse.Namespace) -> list[str]:
    """The figures as Markdown lines."""
    bare, drawn, numpy_drawn, worker = (
        figures.bare, figures.views_on_device, figures.views_on_cpu, figures.worker
    )  # fmt: skip
    lines = [
        f"Device: {figures.device}; torch {torch.__version__}",
        "",
        "| what | p50 ms | images/s | note |",
        "| --- | --- | --- | --- |",
        f"| bare forward, batch 1 | {figures.bare_one.p50_ms:.2f} | "
        f"{figures.bare_one.per_second:.0f} | |",
        f"| bare forward, batch {args.batch} | {bare.p50_ms:.2f} | {bare.per_second:.0f} | |",
        f"| {args.batch} views drawn on the device ({args.points} points each) | "
        f"{drawn.p50_ms:.2f} | {drawn.per_second:.0f} | at most {figures.most_apart} grey "
        "level(s) from numpy's |",
        f"| the same views drawn with numpy on the CPU, one after another | "
        f"{numpy_drawn.p50_ms:.2f} | {numpy_drawn.per_second:.0f} | "
        f"{numpy_drawn.p50_ms / drawn.p50_ms:.1f} x the device's time |",
        f"| the worker's batch of {args.batch} view requests (drawn, scored, answers encoded) | "
        f"{worker.p50_ms:.2f} | {worker.per_second:.0f} | "
        f"{worker.per_second / bare.per_second:.0%} of the bare forward's images/s; "
        f"the reveal adds {worker.p50_ms - bare.p50_ms:.2f} ms a batch |",
    ]
    for precision, step_ms in figures.harmonizer_ms.items():
        lines.append(
            f"| a harmonizer step, batch {args.train_batch}, {precision} | {step_ms:.1f} | "
            f"{args.train_batch / (step_ms / 1000):.0f} | |"
        )
    return lines


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32, help="views and images a batch")
    parser.add_argument("--points", type=int, default=60, help="points a view (a 7 s round: ~60)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--train-repeats", type=int, default=10)
    args = parser.parse_args(argv)
    print("\n".join(report(measure(args), args)), flush=True)


if __name__ == "__main__":
    main()
