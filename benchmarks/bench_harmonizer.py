"""The neural harmonizer at small scale, on the CPU: does fine-tuning raise held-out alignment?

    .venv/bin/python benchmarks/bench_harmonizer.py [--images 600] [--players 10] [--epochs 2]

1. ``--images`` photos of the ImageNet sample (CLICKME_IMAGENET_SAMPLE) become a campaign's image
   set in a temporary SQLite database, and the whole sample an image set for top-1.
2. The simulated "human" truth of a photo depends on its content: the saliency of another model,
   EfficientNet-Lite2, for the photo's label, blurred like the human maps (what Lite2 looks at to
   name the class), weighted towards the upper part of the photo (a Gaussian of the row, peak at
   30% of the height, sigma 20%: people favour heads, which tend to be high). Each simulated
   player (``maps.simulate``) paints 40 points drawn from it.
3. ``clickme export --format webdataset``, then ``clickme harmonize`` of EfficientNet-Lite0 on the
   training images (every tenth image id is held out), which reports top-1 on the 1000 sample
   images and alignment on the held-out images, before and after; top-1 is also measured on the
   sample images outside the campaign (never trained on).
4. The held-out images' split-half ceiling expresses both alignments as a share of it.

Both figures are printed side by side with the time each stage took.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PilImage
from sqlalchemy import select

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from clickme.alignment.saliency import saliency_maps  # noqa: E402
from clickme.alignment.score import blur_like_human_maps, campaign_images  # noqa: E402
from clickme.alignment.train import harmonized_spec  # noqa: E402
from clickme.campaigns.models import Campaign  # noqa: E402
from clickme.core.db import Database  # noqa: E402
from clickme.data import ClickMeDataset  # noqa: E402
from clickme.game.points import pack_points  # noqa: E402
from clickme.images.models import Image  # noqa: E402
from clickme.images.service import find_image_set, image_file_path, list_images  # noqa: E402
from clickme.images.transform import EVAL_SIZE, eval_geometry, load_rgb, to_eval_space  # noqa: E402
from clickme.maps.aggregate import MapSettings  # noqa: E402
from clickme.maps.reliability import campaign_reliability  # noqa: E402
from clickme.maps.simulate import simulate_rounds  # noqa: E402
from clickme.scoring.evaluate import evaluate_accuracy, sample_items  # noqa: E402
from clickme.scoring.registry import get_model_spec  # noqa: E402
from clickme.scoring.scorer import TorchScorer  # noqa: E402
from tests.conftest import imagenet_sample_path  # noqa: E402
from tests.exports.fill import POINTS_PER_ROUND, add_campaign, add_players, add_rounds  # noqa: E402

TRUTH_MODEL = "efficientnet-lite2"
TRAINED_MODEL = "efficientnet-lite0"
CAMPAIGN_SET, SAMPLE_SET = "harmonizer-photos", "imagenet-sample"
TRUTH_BATCH = 16
PRIOR_ROW, PRIOR_SIGMA = 0.3, 0.2  # shares of the height


def upper_prior() -> np.ndarray:
    """(224, 1): the truth's weight of each evaluation-space row."""
    rows = (np.arange(EVAL_SIZE) + 0.5) / EVAL_SIZE
    return np.exp(-((rows - PRIOR_ROW) ** 2) / (2 * PRIOR_SIGMA**2))[:, None]


def clickme(env: dict[str, str], *args: str) -> str:
    """`clickme <args>` in a fresh process (its progress bars go to this terminal)."""
    command = [sys.executable, "-m", "clickme.cli", *args]
    return subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout


def native_truth(eval_map: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (224, 224) evaluation-space map put back on the photo's pixels (zero outside the crop)."""
    left, top, right, bottom = (round(value) for value in eval_geometry(width, height).native_box())
    resized = PilImage.fromarray(eval_map.astype(np.float32)).resize(
        (right - left, bottom - top), PilImage.Resampling.BILINEAR
    )
    truth = np.zeros((height, width))
    truth[top:bottom, left:right] = np.maximum(np.asarray(resized), 0.0)
    return truth


def truths(images: list[Image], images_dir: Path) -> dict[int, np.ndarray]:
    """Each photo's truth: Lite2's saliency for its label, blurred like the human maps, times
    the upper prior."""
    spec = get_model_spec(TRUTH_MODEL)
    model = spec.build()
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(images), TRUTH_BATCH):
        batch = images[start : start + TRUTH_BATCH]
        crops = [to_eval_space(load_rgb(image_file_path(images_dir, image))) for image in batch]
        pixels = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255)
        labels = torch.tensor([image.class_index for image in batch])
        maps = saliency_maps(model, spec.preprocessing, pixels, labels)
        weighted = blur_like_human_maps(maps, MapSettings()) * upper_prior()
        for image, one in zip(batch, weighted, strict=True):
            found[image.id] = native_truth(one, image.width, image.height)
    return found


def truth_painter(known: dict[int, np.ndarray]) -> Callable[[Image, np.random.Generator], bytes]:
    """A ``fill.add_rounds`` painter: a player's 40 points drawn from the photo's truth."""

    def paint(image: Image, rng: np.random.Generator) -> bytes:
        xy = simulate_rounds(rng, known[image.id], 1, POINTS_PER_ROUND)[0]
        return pack_points([(float(x), float(y), 20 * i) for i, (x, y) in enumerate(xy)])

    return paint


def import_photos(
    env: dict[str, str], root: Path, sample: Path, n_images: int
) -> list[tuple[Path, int]]:
    """The first ``n_images`` of a seeded shuffle of the sample as the campaign's set, the whole
    sample as the accuracy set; the sample's other images (never trained on)."""
    items = sample_items(sample)
    chosen = set(np.random.default_rng(0).permutation(len(items))[:n_images].tolist())
    photos = root / "photos"
    photos.mkdir()
    for index in chosen:
        (photos / items[index][0].name).symlink_to(items[index][0])
    clickme(env, "images", "import", str(photos), "--set", CAMPAIGN_SET)
    clickme(env, "images", "import", str(sample), "--set", SAMPLE_SET)
    return [item for index, item in enumerate(items) if index not in chosen]


def unseen_top1(unseen: list[tuple[Path, int]], weights: Path) -> tuple[float, float]:
    """Top-1 on the sample images outside the campaign, before and after."""
    base = get_model_spec(TRAINED_MODEL)
    return tuple(
        evaluate_accuracy(TorchScorer(spec, "cpu", 32, 0.0), unseen).top1
        for spec in (base, harmonized_spec(base, weights))
    )


def play(database: Database, images_dir: Path, n_players: int) -> str:
    """The campaign with every simulated player's round on every photo; its slug."""
    with database.session() as session:
        images = list_images(session, CAMPAIGN_SET)
        campaign = add_campaign(session, find_image_set(session, CAMPAIGN_SET))
        players = add_players(session, n_players)
        add_rounds(session, campaign, images, players, seed=1,
                   painter=truth_painter(truths(images, images_dir)))  # fmt: skip
        return campaign.slug


def held_out_ceiling(database: Database, slug: str, export: Path, splits: int) -> float:
    """The mean corrected split-half value of the held-out images."""
    held_out = set(ClickMeDataset(export, "val").image_ids)
    with database.session() as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.slug == slug))
        images = campaign_images(session, campaign_id, MapSettings(), held_out)
    reliability = campaign_reliability(images, MapSettings(), splits, np.random.default_rng(0))
    return reliability["ceiling"].corrected


def run(args: argparse.Namespace, root: Path) -> None:
    sample = imagenet_sample_path()
    data_dir = root / "data"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLICKME_")}
    env["CLICKME_DATA_DIR"] = str(data_dir)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    clickme(env, "db", "upgrade")
    unseen = import_photos(env, root, sample, args.images)
    database = Database(f"sqlite:///{data_dir / 'clickme.db'}")
    slug = play(database, data_dir / "images", args.players)
    timings["photos, truths and rounds"] = time.perf_counter() - started

    started = time.perf_counter()
    export = root / "export"
    clickme(env, "export", "--campaign", slug, "--out", str(export), "--format", "webdataset",
            "--splits", "0")  # fmt: skip
    timings["export"] = time.perf_counter() - started

    started = time.perf_counter()
    out = root / "harmonized"
    clickme(env, "harmonize", "--export", str(export), "--model", TRAINED_MODEL, "--out", str(out),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr",
            str(args.lr), "--weight", str(args.weight), "--accuracy-set", SAMPLE_SET,
            "--device", "cpu", "--freeze-classifier" if args.freeze_classifier else
            "--no-freeze-classifier")  # fmt: skip
    timings["harmonize (with both reports)"] = time.perf_counter() - started
    report = json.loads((out / "report.json").read_text())
    timings["of which training"] = report["training_seconds"]
    ceiling = held_out_ceiling(database, slug, export, args.splits)
    database.dispose()
    unseen_figures = (len(unseen), *unseen_top1(unseen, Path(report["weights"])))
    print_summary(args, report, ceiling, unseen_figures, timings)


def interval(measured: dict) -> str:
    low, high = measured["alignment_low"], measured["alignment_high"]
    return f"{measured['alignment']:.3f} [{low:.3f}, {high:.3f}]"


def print_summary(
    args: argparse.Namespace,
    report: dict,
    ceiling: float,
    unseen: tuple[int, float, float],
    timings: dict,
) -> None:
    before, after = report["before"], report["after"]
    print(f"\n{TRAINED_MODEL} harmonized on {report['training_images']} photos x {args.players} "
          f"simulated players, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
          f"lambda {args.weight}, classifier {'frozen' if args.freeze_classifier else 'trained'}; "
          f"truth: {TRUTH_MODEL} saliency x upper prior")  # fmt: skip
    print(f"{'':34}{'before':>22}{'after':>22}{'change':>10}")
    print(
        f"{'alignment, held-out (Spearman)':34}{interval(before):>22}{interval(after):>22}"
        f"{after['alignment'] - before['alignment']:>+10.3f}"
    )
    change = report["alignment_change"]
    print(
        f"{'  change, paired by image':34}{'':44}{change['mean']:>+10.3f}"
        f"  [{change['ci_low']:+.3f}, {change['ci_high']:+.3f}]"
    )
    print(
        f"{'  % of held-out ceiling':34}{100 * before['alignment'] / ceiling:>21.1f}%"
        f"{100 * after['alignment'] / ceiling:>21.1f}%"
        f"{100 * (after['alignment'] - before['alignment']) / ceiling:>+9.1f}%"
    )
    print(
        f"{'top-1, 1000 ImageNet sample':34}{100 * before['top1']:>21.1f}%"
        f"{100 * after['top1']:>21.1f}%{100 * (after['top1'] - before['top1']):>+9.1f}%"
    )
    count, unseen_before, unseen_after = unseen
    print(
        f"{f'  of which the {count} never trained on':34}{100 * unseen_before:>21.1f}%"
        f"{100 * unseen_after:>21.1f}%{100 * (unseen_after - unseen_before):>+9.1f}%"
    )
    print(f"held-out images: {before['n_held_out']}; their split-half ceiling {ceiling:.3f}")
    for stage, seconds in timings.items():
        print(f"  {stage}: {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--weight", type=float, default=1.0, help="lambda")
    parser.add_argument("--splits", type=int, default=20, help="split-half splits (ceiling)")
    parser.add_argument("--freeze-classifier", action=argparse.BooleanOptionalAction,
                        default=True, help="leave Lite0's last linear layer as it is")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    if args.keep is not None:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        run(args, args.keep)
        return
    with tempfile.TemporaryDirectory() as folder:
        run(args, Path(folder))


if __name__ == "__main__":
    main()
