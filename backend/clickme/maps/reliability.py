"""How far the human maps can be trusted: split-half ceiling and floor, hold-one-out per player.

All comparisons are Spearman rank correlations over the 224 x 224 evaluation-space pixels. A
half's map is made as ``human_map`` makes it; since the blur and the resampling are linear and
the normalisation keeps the ranks, it is computed as a sum of per-round evaluation maps.
The confidence intervals are percentile bootstraps (95%) of the corrected mean.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from clickme.maps.aggregate import MapSettings, round_eval_maps
from clickme.maps.valid import ImageRounds

BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class SplitHalf:
    """raw: mean Spearman between halves; corrected: Spearman-Brown 2r / (1 + r) of that mean;
    ci_low, ci_high: 95% bootstrap interval of the corrected value; n_splits: splits made."""

    raw: float
    corrected: float
    ci_low: float
    ci_high: float
    n_splits: int


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (ties averaged); nan if either is flat."""
    ranks_a, ranks_b = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    if ranks_a.std() == 0 or ranks_b.std() == 0:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def spearman_brown(r: float) -> float:
    """The reliability of the whole from the correlation between two halves."""
    return 2 * r / (1 + r)


def _summary(values: Sequence[float], rng: np.random.Generator) -> SplitHalf | None:
    """The mean of per-split correlations, corrected, with a bootstrap interval."""
    raw = np.asarray([value for value in values if np.isfinite(value)])
    if raw.size == 0:
        return None
    means = raw[rng.integers(0, raw.size, (BOOTSTRAP_SAMPLES, raw.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    mean = float(raw.mean())
    return SplitHalf(
        raw=mean,
        corrected=spearman_brown(mean),
        ci_low=spearman_brown(float(low)),
        ci_high=spearman_brown(float(high)),
        n_splits=int(raw.size),
    )


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


def split_half(
    rounds_points: Sequence[np.ndarray],
    width: int,
    height: int,
    settings: MapSettings,
    n_splits: int = 50,
    rng: np.random.Generator | None = None,
) -> SplitHalf | None:
    """The split-half ceiling of one image (one round per player); None under two players."""
    if len(rounds_points) < 2:
        return None
    rng = rng if rng is not None else np.random.default_rng()
    maps = round_eval_maps(rounds_points, width, height, settings)
    values = []
    for _ in range(n_splits):
        first, second = _halves(len(maps), rng)
        values.append(spearman(maps[first].sum(axis=0), maps[second].sum(axis=0)))
    return _summary(values, rng)


def split_half_floor(
    images: Sequence[ImageRounds],
    settings: MapSettings,
    n_splits: int,
    rng: np.random.Generator,
) -> SplitHalf | None:
    """The floor: as the split half, with the second half's map taken from a different image;
    None without two images of at least two players."""
    usable = [image for image in images if len(image.rounds_points) >= 2]
    if len(usable) < 2:
        return None
    maps: dict[int, np.ndarray] = {}

    def eval_maps(index: int) -> np.ndarray:
        if index not in maps:
            image = usable[index]
            maps[index] = round_eval_maps(image.rounds_points, image.width, image.height, settings)
        return maps[index]

    values = []
    for _ in range(n_splits):
        one, other = rng.choice(len(usable), size=2, replace=False)
        first, _ = _halves(len(eval_maps(one)), rng)
        _, second = _halves(len(eval_maps(other)), rng)
        values.append(
            spearman(eval_maps(one)[first].sum(axis=0), eval_maps(other)[second].sum(axis=0))
        )
    return _summary(values, rng)


def campaign_reliability(
    images: Sequence[ImageRounds],
    settings: MapSettings,
    n_splits: int = 50,
    rng: np.random.Generator | None = None,
) -> dict:
    """{"per_image": {image id: SplitHalf | None}, "ceiling": the mean over images (raw and
    corrected means, bootstrap interval of the corrected mean over images) or None,
    "floor": ``split_half_floor`` of the images, "n_images": images with a value}."""
    rng = rng if rng is not None else np.random.default_rng()
    per_image = {
        image.image_id: split_half(
            image.rounds_points, image.width, image.height, settings, n_splits, rng
        )
        for image in images
    }
    found = [value for value in per_image.values() if value is not None]
    ceiling = None
    if found:
        corrected = np.asarray([value.corrected for value in found])
        means = corrected[rng.integers(0, corrected.size, (BOOTSTRAP_SAMPLES, corrected.size))]
        low, high = np.percentile(means.mean(axis=1), [2.5, 97.5])
        ceiling = SplitHalf(
            raw=float(np.mean([value.raw for value in found])),
            corrected=float(corrected.mean()),
            ci_low=float(low),
            ci_high=float(high),
            n_splits=n_splits,
        )
    return {
        "per_image": per_image,
        "ceiling": ceiling,
        "floor": split_half_floor(images, settings, n_splits, rng),
        "n_images": len(found),
    }


def hold_one_out(
    rounds_points: Sequence[np.ndarray],
    player_ids: Sequence[int],
    width: int,
    height: int,
    settings: MapSettings,
) -> dict[int, float]:
    """player id -> Spearman of the player's map with the mean map of the other players."""
    if len(rounds_points) < 2:
        return {}
    maps = round_eval_maps(rounds_points, width, height, settings)
    total = maps.sum(axis=0)
    return {
        player_id: spearman(maps[index], total - maps[index])
        for index, player_id in enumerate(player_ids)
    }
