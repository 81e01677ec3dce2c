"""How far the human maps can be trusted: split-half ceiling and floor, hold-one-out per player.

All comparisons are Spearman rank correlations over the 224 x 224 evaluation-space pixels. A
half's map is made as ``human_map`` makes it; since the blur and the resampling are linear and
the normalisation keeps the ranks, it is computed as a sum of per-round evaluation maps.
The confidence intervals are percentile bootstraps (95%) of the corrected mean.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clickme.maps.aggregate import MapSettings, round_eval_counts, round_eval_maps
from clickme.maps.valid import ImageRounds

BOOTSTRAP_SAMPLES = 1000
MAGNITUDE_BITS = np.int64(0x7FFF_FFFF_FFFF_FFFF)


@dataclass(frozen=True)
class SplitHalf:
    """raw: mean Spearman between halves; corrected: Spearman-Brown 2r / (1 + r) of that mean;
    ci_low, ci_high: 95% bootstrap interval of the corrected value; n_splits: splits made."""

    raw: float
    corrected: float
    ci_low: float
    ci_high: float
    n_splits: int


def _sorted_ranks(sorted_values: np.ndarray) -> np.ndarray:
    """float64 1-based ranks of sorted values, each run of equal values at its mean rank."""
    starts = np.empty(sorted_values.size, dtype=bool)
    starts[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    lengths = np.diff(first, append=sorted_values.size)
    return np.repeat(first + (lengths + 1) / 2, lengths)


def _ranks(values: np.ndarray, more_zeros: int = 0) -> tuple[np.ndarray, float]:
    """``average_ranks`` of the values among them and ``more_zeros`` zeros left out, with the
    rank a zero has there."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    index_bits = max(1, (flat.size - 1).bit_length())
    nonzero = np.flatnonzero(flat != 0)  # (a bool mask is faster to scan)
    keys = flat[nonzero].view(np.int64)
    keys ^= (keys >> 63) & MAGNITUDE_BITS  # negative floats: reversed, as their values go
    keys &= np.int64(-1 << index_bits)
    keys |= nonzero
    keys.sort()
    key_values = keys >> index_bits
    sorted_ranks = _sorted_ranks(key_values)
    negatives, zeros = int(np.searchsorted(key_values, 0)), flat.size - len(keys) + more_zeros
    sorted_ranks[negatives:] += zeros
    zero_rank = negatives + (zeros + 1) / 2
    ranks = np.full(flat.size, zero_rank)
    ranks[keys & np.int64((1 << index_bits) - 1)] = sorted_ranks
    return ranks, zero_rank


def average_ranks(values: np.ndarray) -> np.ndarray:
    """float64 1-based ranks of the values, ties averaged, as scipy's ``rankdata`` (~5x faster
    on maps). Only the non-zero values are sorted (maps are mostly 0), as integer keys: a
    value's float64 bits made order-preserving, their lowest log2(n) bits replaced by its
    position; so values that differ only in those bits (under 2**-36 relative at 224 x 224)
    count as tied, and whole numbers under 2**36 (the disc's counts) keep exact ties."""
    return _ranks(values)[0]


def _spearman_of_painted(a: np.ndarray, b: np.ndarray, size: int) -> float:
    """Spearman over ``size`` pixels of which only these (1-D, aligned) may be non-zero in
    either map; the others, zero in both, add their equal ranks' terms in one product each."""
    left_out = size - a.size
    (ranks_a, zero_a), (ranks_b, zero_b) = _ranks(a, left_out), _ranks(b, left_out)
    centre = (size + 1) / 2
    zero_a, zero_b = zero_a - centre, zero_b - centre
    ranks_a -= centre
    ranks_b -= centre
    # einsum, not BLAS: no BLAS threads fighting the export's own worker threads
    square_a = np.einsum("i,i", ranks_a, ranks_a) + left_out * zero_a * zero_a
    square_b = np.einsum("i,i", ranks_b, ranks_b) + left_out * zero_b * zero_b
    product = np.einsum("i,i", ranks_a, ranks_b) + left_out * zero_a * zero_b
    scale = np.sqrt(square_a * square_b)
    return float(product / scale) if scale > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (ties averaged); nan if either is flat.
    Only the pixels non-zero in either map are ranked (maps are mostly 0)."""
    flat_a, flat_b = np.ravel(a), np.ravel(b)
    painted = np.flatnonzero((flat_a != 0) | (flat_b != 0))
    return _spearman_of_painted(flat_a[painted], flat_b[painted], flat_a.size)


class HalfSums:
    """Spearman between sums of subsets of maps (N, ...), over the pixels non-zero in some
    map only (the others are zero in every sum): the maps are gathered there once, and the
    sums of many subsets made in one product (einsum: no BLAS threads)."""

    def __init__(self, maps: np.ndarray) -> None:
        flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
        self.size = flat.shape[1]
        self.painted = flat[:, np.flatnonzero(np.any(flat != 0, axis=0))]

    def __len__(self) -> int:
        return len(self.painted)

    def sums(self, subsets: Sequence[np.ndarray]) -> np.ndarray:
        """(len(subsets), painted pixels): each subset's maps summed (exact for whole
        numbers: the disc's counts)."""
        chosen = np.zeros((len(subsets), len(self.painted)))
        for row, subset in zip(chosen, subsets, strict=True):
            row[subset] = 1.0
        return np.einsum("sn,nk->sk", chosen, self.painted)

    def spearmans(
        self, firsts: Sequence[np.ndarray], seconds: Sequence[np.ndarray] | None = None
    ) -> list[float]:
        """Spearman between the sum of maps ``firsts[i]`` and that of maps ``seconds[i]`` (or,
        without ``seconds``, of all the other maps: the total less the first sum)."""
        first_sums = self.sums(firsts)
        if seconds is None:
            second_sums = self.painted.sum(axis=0) - first_sums
        else:
            second_sums = self.sums(seconds)
        pairs = zip(first_sums, second_sums, strict=True)
        return [_spearman_of_painted(a, b, self.size) for a, b in pairs]


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
    maps = HalfSums(round_eval_counts(rounds_points, width, height, settings))
    firsts = [_halves(len(maps), rng)[0] for _ in range(n_splits)]
    return _summary(maps.spearmans(firsts), rng)


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
