"""Human importance maps by the published ClickMe convention: painted points -> a blurred map.

Each valid round's points are counted per native pixel, the rounds' count maps are averaged, the
mean is blurred and normalised to a maximum of 1. The published blur is a flat disc of diameter
21 px at a 256-px short side, scaled with the image's short side (rounded to the nearest odd
number, capped at 51 px), normalised to sum 1 and applied twice; the alternative is one Gaussian
of sigma = that diameter / 4. Pixels outside the image count as zero (no wrap-around).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from PIL import Image
from scipy import fft, ndimage, signal

from clickme.game.outcomes import PLAYED_OUTCOMES
from clickme.images.transform import EVAL_SIZE, eval_geometry

DISC_DIAMETER_AT_256 = 21
DISC_MAX_DIAMETER = 51
# FFT round-off below this share of a map's peak is set to exactly zero (where nobody painted).
ROUND_OFF = 1e-9


@dataclass(frozen=True)
class MapSettings:
    """What makes a round valid, and how its points become a map.

    blur: "disc" (published: flat disc applied twice) or "gaussian" (sigma = disc diameter / 4).
    outcomes: the round outcomes that count (skips do not, by default).
    first_round_only: only a player's first round on an image counts.
    min_points: a round needs at least this many points.
    min_rounds: an image needs at least this many valid rounds to have a map.
    exclude_flags: players with an open flag of these kinds are left out (as excluded ones
    always are).
    """

    blur: Literal["disc", "gaussian"] = "disc"
    outcomes: tuple[str, ...] = PLAYED_OUTCOMES
    first_round_only: bool = True
    min_points: int = 3
    min_rounds: int = 2
    exclude_flags: tuple[str, ...] = ()


def disc_diameter(short_side: int) -> int:
    """The disc's diameter in native pixels: 21 at a 256-px short side, scaled, odd, <= 51."""
    scaled = DISC_DIAMETER_AT_256 * short_side / 256
    return min(DISC_MAX_DIAMETER, 2 * int(np.floor(scaled / 2)) + 1)


def disc_kernel(short_side: int) -> np.ndarray:
    """float64 flat disc (diameter x diameter) summing to 1."""
    diameter = disc_diameter(short_side)
    offsets = np.arange(diameter) - diameter // 2
    inside = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (diameter / 2) ** 2
    return inside / inside.sum()


@lru_cache(maxsize=64)
def _twice_disc(short_side: int) -> np.ndarray:
    """The disc convolved with itself: applying it once is applying the disc twice."""
    kernel = disc_kernel(short_side)
    return signal.convolve2d(kernel, kernel)


@lru_cache(maxsize=16)
def _twice_disc_spectrum(height: int, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The twice-disc's real FFT at the padded size that blurring a (height, width) map takes
    (no wrap-around), with that size; cached, as a campaign's images share a few sizes."""
    kernel = _twice_disc(min(height, width))
    shape = (
        fft.next_fast_len(height + kernel.shape[0] - 1, real=True),
        fft.next_fast_len(width + kernel.shape[1] - 1, real=True),
    )
    spectrum = fft.rfft2(kernel, shape)
    spectrum.flags.writeable = False
    return spectrum, shape


def points_map(points_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """float32 (height, width): how many points fall in each native pixel (outside ones dropped)."""
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    cols, rows = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    counts = np.bincount(rows[inside] * width + cols[inside], minlength=width * height)
    return counts.reshape(height, width).astype(np.float32)


def blur(maps: np.ndarray, settings: MapSettings) -> np.ndarray:
    """float64 blurred copy of a (H, W) map or a (N, H, W) stack of maps, by the settings' blur."""
    stack = np.asarray(maps, dtype=np.float64)
    short_side = min(stack.shape[-2:])
    if settings.blur == "gaussian":
        sigma = disc_diameter(short_side) / 4
        sigmas = (0.0,) * (stack.ndim - 2) + (sigma, sigma)
        return ndimage.gaussian_filter(stack, sigmas, mode="constant", cval=0.0)
    height, width = stack.shape[-2:]
    spectrum, shape = _twice_disc_spectrum(height, width)
    margin = _twice_disc(short_side).shape[0] // 2
    full = fft.irfft2(fft.rfft2(stack, shape) * spectrum, shape)
    blurred = full[..., margin : margin + height, margin : margin + width]
    peaks = blurred.max(axis=(-2, -1), keepdims=True)
    blurred[blurred <= peaks * ROUND_OFF] = 0.0
    return blurred


def _normalised(values: np.ndarray) -> np.ndarray:
    peak = float(values.max())
    return (values / peak if peak > 0 else values).astype(np.float32)


def human_map(
    rounds_points: Sequence[np.ndarray],
    width: int,
    height: int,
    settings: MapSettings = MapSettings(),
) -> np.ndarray:
    """float32 (height, width) in [0, 1]: the rounds' point-count maps averaged, blurred and
    normalised to a maximum of 1 (all zeros when there is no point)."""
    every_point = [np.asarray(points, dtype=np.float64).reshape(-1, 2) for points in rounds_points]
    total = points_map(np.concatenate([np.empty((0, 2)), *every_point]), width, height)
    mean = total.astype(np.float64) / max(1, len(rounds_points))
    return _normalised(blur(mean, settings))


def to_eval(map_native: np.ndarray) -> np.ndarray:
    """float32 (224, 224): the map in evaluation space (short side resized to 256, centre crop
    224), resampled bilinearly so values stay within the map's range."""
    height, width = map_native.shape
    box = eval_geometry(width, height).native_box()
    image = Image.fromarray(np.asarray(map_native, dtype=np.float32))
    crop = image.resize((EVAL_SIZE, EVAL_SIZE), Image.Resampling.BILINEAR, box=box)
    return np.maximum(np.asarray(crop, dtype=np.float32), 0.0)


def round_eval_maps(
    rounds_points: Sequence[np.ndarray], width: int, height: int, settings: MapSettings
) -> np.ndarray:
    """float64 (N, 224, 224): each round's blurred map in evaluation space, unnormalised.

    Blurring and resampling are linear and normalising by the peak keeps the ranks, so the sum
    of any subset of these ranks the pixels exactly as ``to_eval(human_map(subset))`` does.
    """
    counts = np.stack([points_map(points, width, height) for points in rounds_points])
    blurred = blur(counts, settings)
    return np.stack([to_eval(one) for one in blurred]).astype(np.float64)
