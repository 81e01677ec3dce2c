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
from scipy import ndimage, signal

from clickme.game.outcomes import PLAYED_OUTCOMES
from clickme.images.transform import EVAL_SIZE, map_view_indices

DISC_DIAMETER_AT_256 = 21
DISC_MAX_DIAMETER = 51
# FFT round-off below this share of a map's peak is set to exactly zero (where nobody painted).
ROUND_OFF = 1e-9
# A map's points are blurred densely over their window when that costs less, counting this
# many units per window pixel against the points' (POINT_COST + response pixels) each.
DENSE_COST_PER_PIXEL = 20
POINT_COST = 2000


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
    min_points: int = 2
    min_rounds: int = 5
    exclude_flags: tuple[str, ...] = ()


def disc_diameter(short_side: int) -> int:
    """The disc's diameter in native pixels: ``round(21 * short_side / 256)`` (half to even),
    plus 1 if even, at most 51 (240 -> 21, 290 -> 25, 48 -> 5, 609 -> 51)."""
    diameter = int(np.round(DISC_DIAMETER_AT_256 * short_side / 256))
    return min(DISC_MAX_DIAMETER, diameter + 1 if diameter % 2 == 0 else diameter)


def disc_mask(diameter: int) -> np.ndarray:
    """bool (diameter, diameter): the pixels with (x - c)^2 + (y - c)^2 <= c^2, c = (d - 1) / 2."""
    offsets = np.arange(diameter) - (diameter - 1) / 2
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= ((diameter - 1) / 2) ** 2


def disc_kernel(short_side: int) -> np.ndarray:
    """float64 flat disc (diameter x diameter) summing to 1."""
    inside = disc_mask(disc_diameter(short_side))
    return inside / inside.sum()


def gaussian_kernel_1d(short_side: int) -> np.ndarray:
    """float64: SciPy's ``gaussian_filter`` weights for sigma = disc diameter / 4."""
    sigma = disc_diameter(short_side) / 4
    radius = int(4.0 * sigma + 0.5)  # gaussian_filter's default truncate, 4 sigma
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    return ndimage.gaussian_filter1d(impulse, sigma, mode="constant", cval=0.0)


@lru_cache(maxsize=1024)
def point_response(blur_kind: str, short_side: int, clips: tuple[int, int, int, int]) -> np.ndarray:
    """float64 (2r + 1, 2r + 1), centred on a point, in units of ``response_scale``: the blur
    of one point whose first blur pass would reach ``clips`` = (top, bottom, left, right)
    pixels past the image's edges. The disc: the disc cut by the edges (the first pass,
    cropped) convolved with the disc, in whole pixel counts (exact). The Gaussian is separable:
    the outer product of its weights (cropped when placed)."""
    if blur_kind == "gaussian":
        weights = gaussian_kernel_1d(short_side)
        response = np.outer(weights, weights)
    else:
        disc = disc_mask(disc_diameter(short_side))
        top, bottom, left, right = clips
        cut = disc.copy()
        cut[:top], cut[cut.shape[0] - bottom :] = False, False
        cut[:, :left], cut[:, cut.shape[1] - right :] = False, False
        response = np.rint(signal.fftconvolve(cut.astype(np.float64), disc.astype(np.float64)))
    response.flags.writeable = False
    return response


def response_scale(blur_kind: str, short_side: int) -> float:
    """What a unit of ``point_response`` is worth: 1 / (disc area)^2 for the disc."""
    if blur_kind == "gaussian":
        return 1.0
    return 1.0 / float(disc_mask(disc_diameter(short_side)).sum()) ** 2


def response_radius(blur_kind: str, short_side: int) -> int:
    """How far (pixels) the blur of one point reaches."""
    if blur_kind == "gaussian":
        return (len(gaussian_kernel_1d(short_side)) - 1) // 2
    return disc_diameter(short_side) - 1


def points_map(points_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """float32 (height, width): how many points fall in each native pixel (outside ones dropped)."""
    rows, cols, counts = painted_pixels(points_xy, width, height)
    total = np.zeros((height, width), dtype=np.float32)
    total[rows, cols] = counts
    return total


def painted_pixels(
    points_xy: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The native pixels (rows, cols) holding points, with how many each holds (float64);
    points outside the image are dropped."""
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    cols, rows = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    pixels, counts = np.unique(rows[inside] * width + cols[inside], return_counts=True)
    return pixels // width, pixels % width, counts.astype(np.float64)


def blur(maps: np.ndarray, settings: MapSettings) -> np.ndarray:
    """float64 blurred copy of a (H, W) map or a (N, H, W) stack of dense maps, by the settings'
    blur: the disc twice, each pass zero-padded "same" and cropped to H x W; or the Gaussian."""
    stack = np.asarray(maps, dtype=np.float64)
    short_side = min(stack.shape[-2:])
    if settings.blur == "gaussian":
        sigma = disc_diameter(short_side) / 4
        sigmas = (0.0,) * (stack.ndim - 2) + (sigma, sigma)
        return ndimage.gaussian_filter(stack, sigmas, mode="constant", cval=0.0)
    kernel = disc_kernel(short_side)[(np.newaxis,) * (stack.ndim - 2)]
    blurred = stack
    for _ in range(2):
        blurred = signal.fftconvolve(blurred, kernel, mode="same", axes=(-2, -1))
        peaks = np.abs(blurred).max(axis=(-2, -1), keepdims=True)
        blurred[np.abs(blurred) <= peaks * ROUND_OFF] = 0.0  # FFT round-off where nothing was
    return blurred


class _Responses:
    """The blur of painted points on one image, point by point (the blur is linear): each
    painted pixel adds its count times its response (``point_response``), placed and cropped."""

    def __init__(self, width: int, height: int, settings: MapSettings) -> None:
        self.width, self.height, self.kind = width, height, settings.blur
        self.short_side = min(width, height)
        self.radius = response_radius(self.kind, self.short_side)
        self.scale = response_scale(self.kind, self.short_side)

    def _patches(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2r + 1, 2r + 1) the distinct responses of the pixels, and each pixel's one."""
        if self.kind == "gaussian":
            clips = np.zeros((rows.size, 4), dtype=np.int64)
        else:
            reach = (disc_diameter(self.short_side) - 1) // 2
            clips = np.maximum(0, np.stack([
                reach - rows, rows + reach - self.height + 1,
                reach - cols, cols + reach - self.width + 1,
            ], axis=1))  # fmt: skip
        distinct, which = np.unique(clips, axis=0, return_inverse=True)
        patches = np.stack([
            point_response(self.kind, self.short_side, tuple(int(v) for v in clip))
            for clip in distinct
        ])  # fmt: skip
        return patches, which.reshape(-1)

    def native(self, points_xy: np.ndarray) -> tuple[tuple[int, int], np.ndarray]:
        """((top, left), float64 window) in units of ``scale``: the blurred point counts over
        the smallest window of the image outside which they are zero. Few points are placed
        one by one; many on a small window are blurred densely there (the same values: the
        disc's are whole counts either way, and zero padding at the window's edges inside the
        image changes nothing, the blur of the points being zero there)."""
        rows, cols, counts = painted_pixels(points_xy, self.width, self.height)
        if rows.size == 0:
            return (0, 0), np.zeros((0, 0))
        r = self.radius
        top, left = max(0, int(rows.min()) - r), max(0, int(cols.min()) - r)
        bottom = min(self.height, int(rows.max()) + r + 1)
        right = min(self.width, int(cols.max()) + r + 1)
        window = np.zeros((bottom - top, right - left))
        if window.size * DENSE_COST_PER_PIXEL < rows.size * (POINT_COST + (2 * r + 1) ** 2):
            window[rows - top, cols - left] = counts
            reach = (disc_diameter(self.short_side) - 1) // 2
            inside = min(rows.min(), cols.min(), self.height - 1 - rows.max(),
                         self.width - 1 - cols.max()) >= reach  # fmt: skip
            return (top, left), self._dense(window, bool(inside))
        patches, which = self._patches(rows, cols)
        for row, col, count, patch_id in zip(
            rows.tolist(), cols.tolist(), counts.tolist(), which.tolist(), strict=True
        ):
            r0, c0 = max(0, row - r), max(0, col - r)
            r1, c1 = min(self.height, row + r + 1), min(self.width, col + r + 1)
            patch = patches[patch_id, r0 - row + r : r1 - row + r, c0 - col + r : c1 - col + r]
            target = window[r0 - top : r1 - top, c0 - left : c1 - left]
            target += patch if count == 1 else count * patch
        return (top, left), window

    def _dense(self, counts: np.ndarray, inside: bool) -> np.ndarray:
        """The published blur of a window of counts, in units of ``scale``. With every point
        ``inside`` (its first pass within the image: the crop between the passes cuts
        nothing), both passes in one with the disc convolved with itself (half the FFTs)."""
        if self.kind == "gaussian":
            sigma = disc_diameter(self.short_side) / 4
            return ndimage.gaussian_filter(counts, sigma, mode="constant", cval=0.0)
        if inside:
            kernels = [point_response(self.kind, self.short_side, (0, 0, 0, 0))]
        else:
            kernels = [disc_mask(disc_diameter(self.short_side)).astype(np.float64)] * 2
        for kernel in kernels:  # whole counts: rounding removes the FFT's round-off exactly
            counts = np.rint(signal.fftconvolve(counts, kernel, mode="same"))
        return counts

    def views(self, rounds_points: Sequence[np.ndarray]) -> np.ndarray:
        """float64 (N, 224, 224) in units of ``scale``: each round's blurred point counts at the
        map view's pixels only (each response's view rows, then columns, taken and added)."""
        view_rows, view_cols = map_view_indices(self.width, self.height)
        out = np.zeros((len(rounds_points), EVAL_SIZE, EVAL_SIZE))
        r = self.radius
        for view, points in zip(out, rounds_points, strict=True):
            rows, cols, counts = painted_pixels(points, self.width, self.height)
            if rows.size == 0:
                continue
            patches, which = self._patches(rows, cols)
            spans = zip(
                rows.tolist(), cols.tolist(), counts.tolist(), which.tolist(),
                np.searchsorted(view_rows, rows - r, "left").tolist(),
                np.searchsorted(view_rows, rows + r, "right").tolist(),
                np.searchsorted(view_cols, cols - r, "left").tolist(),
                np.searchsorted(view_cols, cols + r, "right").tolist(),
                strict=True,
            )  # fmt: skip
            for row, col, count, patch_id, i0, i1, j0, j1 in spans:
                if i0 < i1 and j0 < j1:
                    picked = patches[patch_id].take(view_rows[i0:i1] - (row - r), axis=0)
                    picked = picked.take(view_cols[j0:j1] - (col - r), axis=1)
                    view[i0:i1, j0:j1] += picked if count == 1 else count * picked
        return out


def human_map(
    rounds_points: Sequence[np.ndarray],
    width: int,
    height: int,
    settings: MapSettings = MapSettings(),
) -> np.ndarray:
    """float32 (height, width) in [0, 1]: the rounds' point-count maps averaged, blurred and
    normalised to a maximum of 1 (all zeros when there is no point).

    Made point by point (the blur is linear): each painted pixel adds its count times its blur
    response (``point_response``), within the window the points reach; memory is the map and
    that window, whatever the rounds."""
    every_point = [np.asarray(points, dtype=np.float64).reshape(-1, 2) for points in rounds_points]
    (top, left), window = _Responses(width, height, settings).native(
        np.concatenate([np.empty((0, 2)), *every_point])
    )
    values = np.zeros((height, width), dtype=np.float32)
    peak = float(window.max()) if window.size else 0.0
    if peak > 0:  # divided in float64, stored in float32, in one pass
        target = values[top : top + window.shape[0], left : left + window.shape[1]]
        np.divide(window, peak, out=target, casting="same_kind")
    return values


def to_eval(map_native: np.ndarray) -> np.ndarray:
    """float32 (224, 224): the map's evaluation view (``map_view_indices``: nearest-exact
    resize of the short side to 256, centre crop 224), pure pixel selection."""
    height, width = map_native.shape
    rows, cols = map_view_indices(width, height)
    return np.asarray(map_native, dtype=np.float32)[np.ix_(rows, cols)]


def round_eval_counts(
    rounds_points: Sequence[np.ndarray], width: int, height: int, settings: MapSettings
) -> np.ndarray:
    """float64 (N, 224, 224): ``round_eval_maps`` in units of the blur's point response
    (``response_scale``): whole numbers for the disc, so that sums of them are exact."""
    return _Responses(width, height, settings).views(rounds_points)


def round_eval_maps(
    rounds_points: Sequence[np.ndarray], width: int, height: int, settings: MapSettings
) -> np.ndarray:
    """float64 (N, 224, 224): each round's blurred map in evaluation view, unnormalised.

    The blur is linear, the view picks pixels and normalising by the peak keeps the ranks, so
    the sum of any subset of these ranks the pixels exactly as ``to_eval(human_map(subset))``
    does. Made at the view's pixels only: 0.4 MB per round, whatever the photo's size."""
    maps = round_eval_counts(rounds_points, width, height, settings)
    maps *= response_scale(settings.blur, min(width, height))
    return maps
