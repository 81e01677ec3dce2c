"""Is the default brush playable? A simulated player paints a spiral out from the image's centre
(where ImageNet objects usually sit) at a steady hand speed; the DNN sees the reveal every 200 ms
as in the game. For each brush radius: the share of images won inside the 7 s, and the median
time to win. Uses the ImageNet sample (CLICKME_IMAGENET_SAMPLE) and the default DNN on ONNX.
"""

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

from clickme.campaigns.schemas import CampaignCreate
from clickme.core.config import Settings
from clickme.scoring.evaluate import sample_items
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.reveal import RevealRule, compose, prepare_image, render_mask
from clickme.scoring.scorer import build_scorer, top_guesses

# The game settings a new campaign gets.
DEFAULTS = SimpleNamespace(
    **{name: field.default for name, field in CampaignCreate.model_fields.items()}
)

SAMPLE_RATE_HZ = 60
REVEAL_EVERY_MS = 200
HAND_SPEED = 0.8  # image short sides per second


def spiral(width: int, height: int, radius_px: float, duration_ms: int) -> np.ndarray:
    """(N, 3) points (x, y, t ms) of a centre-out spiral whose turns overlap a little."""
    short = min(width, height)
    spacing = 1.6 * radius_px  # distance between turns
    speed = HAND_SPEED * short / 1000  # px per ms
    points, length, theta = [], 0.0, 0.0
    for t in np.arange(0, duration_ms, 1000 / SAMPLE_RATE_HZ):
        while length < speed * t:
            r = spacing * theta / (2 * math.pi)
            step = 0.05
            length += math.hypot(r, spacing / (2 * math.pi)) * step
            theta += step
        r = spacing * theta / (2 * math.pi)
        x, y = width / 2 + r * math.cos(theta), height / 2 + r * math.sin(theta)
        if 0 <= x < width and 0 <= y < height:
            points.append((x, y, t))
    return np.array(points, dtype=np.float64).reshape(-1, 3)


def play(scorer, path: Path, label: int, rule: RevealRule, top_k: int, limit_ms: int) -> int | None:
    """The time (ms) at which the DNN first has the label in its top-k, or None."""
    prepared = prepare_image(path, rule)
    radius = rule.radius_px(prepared.width, prepared.height)
    points = spiral(prepared.width, prepared.height, radius, limit_ms)
    for now in range(REVEAL_EVERY_MS, limit_ms + 1, REVEAL_EVERY_MS):
        painted = points[points[:, 2] <= now, :2]
        mask = render_mask(painted.astype(np.float32), prepared, rule)
        probs = scorer.classify_batch_sync(compose(prepared, mask)[np.newaxis])[0]
        if label in {g.class_index for g in top_guesses(probs, top_k)}:
            return now
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="every n-th of the 1000 samples")
    parser.add_argument("--radii", default="0.04,0.06,0.08,0.10")
    args = parser.parse_args()
    folder = Path(os.environ.get("CLICKME_IMAGENET_SAMPLE", "../shared/imagenet-sample"))
    if not folder.is_dir():
        sys.exit(f"ImageNet sample not found: {folder} (set CLICKME_IMAGENET_SAMPLE)")
    items = sample_items(folder)[:: max(1, 1000 // args.images)]
    with tempfile.TemporaryDirectory() as data_dir:
        scorer = build_scorer(Settings(data_dir=Path(data_dir)), get_model_spec(DEFAULT_MODEL))
        rows = []
        for radius in (float(r) for r in args.radii.split(",")):
            rule = RevealRule(
                radius=radius,
                softness=DEFAULTS.brush_softness,
                background=DEFAULTS.reveal_background,  # type: ignore[arg-type]
                blur_sigma=DEFAULTS.background_blur_sigma,
            )
            wins = [
                play(scorer, path, label, rule, DEFAULTS.top_k, DEFAULTS.time_limit_ms)
                for path, label in tqdm(items, desc=f"radius {radius:.2f}", leave=False)
            ]
            times = [w for w in wins if w is not None]
            rows.append((radius, len(times) / len(wins), np.median(times) if times else math.nan))
        scorer.close()
    limit = DEFAULTS.time_limit_ms
    print(f"\nSpiral painter, {len(items)} images, top-{DEFAULTS.top_k}, {limit} ms")
    print(f"{'radius':>8}{'won':>8}{'median ms':>11}{'median score':>14}")
    for radius, won, median in rows:
        score = 100 * (1 - median / limit) if not math.isnan(median) else 0
        print(f"{radius:>8.2f}{won:>8.0%}{median:>11.0f}{score:>14.0f}")


if __name__ == "__main__":
    main()
