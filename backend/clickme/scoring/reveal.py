"""The one reveal geometry: which part of an image the painted points show, to players and DNNs.

A point reveals a bubble of radius ``rule.radius`` (a fraction of the image's short side): fully
inside ``radius * (1 - softness)``, fading linearly to nothing at ``radius``; bubbles combine by
maximum. Masks live in the 224 x 224 evaluation crop (``clickme.images.transform``) and are sampled
at pixel centres; since bubbles combine by maximum, ``render_mask(a + b)`` equals
``np.maximum(render_mask(a), render_mask(b))``, so masks can be built up batch by batch.
"""

import contextlib
import hashlib
import logging
import math
import os
import threading
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter

from clickme.core.lru import LruCache
from clickme.images.transform import EVAL_SIZE, CropGeometry, eval_geometry, load_rgb, to_eval_space

log = logging.getLogger(__name__)

Background = Literal["blur", "grey", "noise"]
BACKGROUNDS: tuple[str, ...] = ("blur", "grey", "noise")
GREY_LEVEL = 128
_POINTS_PER_PASS = 256  # bounds the memory of one vectorised pass
# Up to this many distances (centres x pixels of the region), all are computed in one broadcast
# (``_min_squared_distance_at_once``): a batch's few bubbles over their box in a few numpy calls.
_AT_ONCE_MAX_VALUES = 1 << 15
_PIXEL_INDICES = np.arange(EVAL_SIZE, dtype=np.float32)


@dataclass(frozen=True)
class RevealRule:
    """How painting reveals an image, and what the DNN sees where nothing is revealed."""

    radius: float
    softness: float
    background: Background
    blur_sigma: float

    def __post_init__(self) -> None:
        if not 0 < self.radius <= 1:
            raise ValueError(f"radius must be in (0, 1] of the short side, got {self.radius}")
        if not 0 <= self.softness <= 1:
            raise ValueError(f"softness must be in [0, 1], got {self.softness}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.background == "blur" and self.blur_sigma <= 0:
            raise ValueError(f"a blurred background needs blur_sigma > 0, got {self.blur_sigma}")

    def radius_px(self, width: int, height: int) -> float:
        """The bubble radius in the native pixels of a ``width`` x ``height`` image."""
        return self.radius * min(width, height)


@dataclass(frozen=True)
class PreparedImage:
    """An image ready for revealing: its evaluation crop and the background behind the bubbles."""

    pixels: np.ndarray
    background: np.ndarray
    geometry: CropGeometry
    width: int
    height: int

    @cached_property
    def reveal_delta(self) -> np.ndarray:
        """float32 image minus background: compose adds mask x this to the background."""
        return self.pixels.astype(np.float32) - self.background


def _noise_seed(path: Path) -> int:
    """From the file name (stored images are named by content hash), so every process agrees."""
    return int.from_bytes(hashlib.sha256(path.name.encode()).digest()[:8], "little")


def make_background(pixels: np.ndarray, rule: RevealRule, path: Path) -> np.ndarray:
    """What the DNN sees outside the bubbles; noise is seeded from the path, so it is fixed."""
    if rule.background == "blur":
        sigma = (rule.blur_sigma, rule.blur_sigma, 0)
        blurred = gaussian_filter(pixels.astype(np.float32), sigma, mode="nearest")
        return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    if rule.background == "grey":
        return np.full_like(pixels, GREY_LEVEL)
    rng = np.random.default_rng(_noise_seed(path))
    return rng.integers(0, 256, size=pixels.shape, dtype=np.uint8)


def prepare_image(path: Path, rule: RevealRule) -> PreparedImage:
    """Decodes an image file into its evaluation crop and the rule's background."""
    image = load_rgb(path)
    pixels = to_eval_space(image)
    return PreparedImage(
        pixels=pixels,
        background=make_background(pixels, rule, path),
        geometry=eval_geometry(*image.size),
        width=image.width,
        height=image.height,
    )


# Bump when ``prepare_image`` changes what it makes: prepared files of older versions are then
# never read again.
PREPARED_FORMAT = 1


def _prepared_file(folder: Path, path: Path, background: str, sigma: float) -> Path | None:
    """Where the image file's preparation for (background, sigma) is kept: named by the file's
    path, size and modification time, so a changed file is prepared anew (None if it is gone)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{background}|{sigma!r}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return folder / f"{digest}-v{PREPARED_FORMAT}.npz"


def _read_prepared(file: Path) -> PreparedImage | None:
    """A prepared image saved by ``_save_prepared``; None when missing or unreadable."""
    try:
        with np.load(file) as saved:
            pixels, background, size = saved["pixels"], saved["background"], saved["size"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    width, height = (int(value) for value in size)
    return PreparedImage(pixels, background, eval_geometry(width, height), width, height)


def _save_prepared(file: Path, prepared: PreparedImage) -> None:
    """Writes the prepared image (uncompressed, about 300 KB) under a temporary name, then
    renames it: readers in other processes never see half a file. A failure (disk full, a
    read-only folder) only costs the next process the preparation."""
    partial = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as stream:
            np.savez(stream, pixels=prepared.pixels, background=prepared.background,
                     size=np.array([prepared.width, prepared.height]))  # fmt: skip
        os.replace(partial, file)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink()
        log.warning("could not keep a prepared image in %s: %s", file.parent, error)


class PreparedImageCache:
    """A thread-safe LRU of prepared images in memory, in front of an optional folder where
    prepared images are kept for every process and later starts (decoding, resizing and
    blurring a photo cost about 10 ms; reading it back, about 0.2 ms)."""

    def __init__(self, max_items: int, folder: Path | None = None) -> None:
        self._items: LruCache[tuple[Path, str, float], PreparedImage] = LruCache(max_items)
        self.folder = folder

    def get(self, path: Path, rule: RevealRule) -> PreparedImage:
        sigma = rule.blur_sigma if rule.background == "blur" else 0.0
        key = (path, rule.background, sigma)
        prepared = self._items.get(key)
        if prepared is None:
            prepared = self._kept_or_prepared(path, rule, sigma)
            self._items.put(key, prepared)
        return prepared

    def _kept_or_prepared(self, path: Path, rule: RevealRule, sigma: float) -> PreparedImage:
        file = None
        if self.folder is not None:
            file = _prepared_file(self.folder, path, rule.background, sigma)
        kept = _read_prepared(file) if file is not None else None
        if kept is not None:
            return kept
        prepared = prepare_image(path, rule)
        if file is not None:
            _save_prepared(file, prepared)
        return prepared

    def __len__(self) -> int:
        return len(self._items)


class Region(NamedTuple):
    """Rows ``[top, bottom)`` and columns ``[left, right)`` of the evaluation crop."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def empty(self) -> bool:
        return self.top >= self.bottom or self.left >= self.right

    def of(self, array: np.ndarray) -> np.ndarray:
        """The region's view of a (224, 224, ...) array."""
        return array[self.top : self.bottom, self.left : self.right]


WHOLE_CROP = Region(0, EVAL_SIZE, 0, EVAL_SIZE)
NO_REGION = Region(0, 0, 0, 0)


def _min_squared_distance(
    centres: np.ndarray, radius: float, region: Region = WHOLE_CROP
) -> np.ndarray:
    """float32 squared distance from each pixel centre of the region to its nearest centre
    where that is within ``radius``; beyond it, some value over ``radius`` squared (or inf),
    which ``_fade`` makes 0 either way. Each centre only touches its own bounding square: one
    vectorised pass computes every square's distances, then one in-place minimum per centre;
    a few centres over a small region, all at once (``_min_squared_distance_at_once``)."""
    height, width = region.bottom - region.top, region.right - region.left
    reach = math.ceil(radius)
    # the centres shifted so that the region's corner is pixel (0, 0) (an integer shift: every
    # distance is the same float32 as in a whole-crop render)
    shifted = centres - np.array([region.left, region.top], dtype=np.float32)
    if len(centres) > 0 and len(centres) * height * width <= _AT_ONCE_MAX_VALUES:
        return _min_squared_distance_at_once(shifted, reach, height, width)
    window = 2 * reach + 1
    # room for squares hanging over the edges
    field = np.full((height + 2 * window, width + 2 * window), np.inf, dtype=np.float32)
    near = shifted[
        (np.abs(shifted[:, 0] - width / 2) < width / 2 + radius)
        & (np.abs(shifted[:, 1] - height / 2) < height / 2 + radius)
    ]
    steps = np.arange(window, dtype=np.float32)
    for start in range(0, len(near), _POINTS_PER_PASS):
        points = near[start : start + _POINTS_PER_PASS]
        corners = np.floor(points) - reach  # each square's first pixel
        offsets = points - corners - np.float32(0.5)  # the centre, from that pixel's centre
        dx2 = np.square(steps - offsets[:, 0:1])
        dy2 = np.square(steps - offsets[:, 1:2])
        squares = dy2[:, :, None] + dx2[:, None, :]
        lefts, tops = (corners.astype(np.int64) + window).T.tolist()
        for left, top, square in zip(lefts, tops, squares, strict=True):
            target = field[top : top + window, left : left + window]
            np.minimum(target, square, out=target)
    return field[window : window + height, window : window + width]


def _min_squared_distance_at_once(
    shifted: np.ndarray, reach: int, height: int, width: int
) -> np.ndarray:
    """``_min_squared_distance`` over every pixel for every centre in one broadcast, each value
    computed as a centre's square computes it (a pixel's offset from the square's first pixel,
    less the centre's), so the same float32 wherever a square reaches; elsewhere the pixel is
    over ``reach`` from the centre in x or y, beyond the radius either way."""
    corners = np.floor(shifted) - reach
    offsets = shifted - corners - np.float32(0.5)
    dx2 = np.square((_PIXEL_INDICES[:width] - corners[:, 0:1]) - offsets[:, 0:1])
    dy2 = np.square((_PIXEL_INDICES[:height] - corners[:, 1:2]) - offsets[:, 1:2])
    return (dy2[:, :, None] + dx2[:, None, :]).min(axis=0)


def _eval_centres(
    points_native: np.ndarray, prepared: PreparedImage, rule: RevealRule
) -> tuple[np.ndarray, float]:
    """The points in the evaluation crop, and the bubble radius there."""
    points = np.asarray(points_native, dtype=np.float32).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError("points must be finite")
    radius = rule.radius_px(prepared.width, prepared.height) * prepared.geometry.scale
    return prepared.geometry.to_eval(points), radius


def _fade(squared: np.ndarray, radius: float, softness: float) -> np.ndarray:
    distance = np.sqrt(squared)
    fade_width = np.float32(radius * softness)
    if fade_width == 0:  # a hard edge (softness 0, or too small to count in float32)
        return (distance <= radius).astype(np.float32)
    with np.errstate(over="ignore"):  # a fade this thin overflows to +-inf: clipped, a hard edge
        return np.clip((np.float32(radius) - distance) / fade_width, 0, 1)


def render_mask(points_native: np.ndarray, prepared: PreparedImage, rule: RevealRule) -> np.ndarray:
    """float32 (224, 224) in [0, 1]: how much of each evaluation pixel the points reveal."""
    centres, radius = _eval_centres(points_native, prepared, rule)
    return _fade(_min_squared_distance(centres, radius), radius, rule.softness)


def grow_mask(
    mask: np.ndarray, points_native: np.ndarray, prepared: PreparedImage, rule: RevealRule
) -> Region:
    """Grows ``mask`` in place by the points' bubbles, rendering only the region they touch
    (their bounding box), and gives that region (empty when the points touch none). The
    result equals ``np.maximum(mask, render_mask(points))``."""
    centres, radius = _eval_centres(points_native, prepared, rule)
    if len(centres) == 0:
        return NO_REGION
    low = np.floor(centres.min(axis=0) - radius) - 1
    high = np.ceil(centres.max(axis=0) + radius) + 1
    left, top = (max(0, int(value)) for value in low)
    right, bottom = (min(EVAL_SIZE, int(value)) for value in high)
    region = Region(top, bottom, left, right)
    if region.empty:
        return NO_REGION
    grown = _fade(_min_squared_distance(centres, radius, region), radius, rule.softness)
    np.maximum(region.of(mask), grown, out=region.of(mask))
    return region


def row_sums(mask: np.ndarray) -> np.ndarray:
    """float64 (rows,): each row's sum of the mask, as ``revealed_fraction`` adds it up (a row
    sums to the same value whether the rest of the mask is summed with it or not)."""
    return mask.astype(np.float64).sum(axis=1)


def revealed_fraction(mask: np.ndarray, sums: np.ndarray | None = None) -> float:
    """The share of the evaluation crop revealed (partly revealed pixels count partly); from the
    mask's ``row_sums`` when they are kept already."""
    return float((row_sums(mask) if sums is None else sums).sum() / mask.size)


def nothing_revealed(prepared: PreparedImage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mask, its ``row_sums`` and the image (``compose``) before any point: zeros, and
    the background, bit for bit what drawing them gives."""
    mask = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=np.float32)
    return mask, np.zeros(EVAL_SIZE), prepared.background.copy()


def compose(prepared: PreparedImage, mask: np.ndarray) -> np.ndarray:
    """uint8 (224, 224, 3), what the DNN sees: the image where revealed, background elsewhere."""
    image = np.empty((*mask.shape, 3), dtype=np.uint8)
    compose_region(prepared, mask, image, WHOLE_CROP)
    return image


def compose_region(
    prepared: PreparedImage, mask: np.ndarray, image: np.ndarray, region: Region
) -> None:
    """Recomposes the region of ``image`` (as ``compose`` makes it) in place."""
    if region.empty:
        return
    blended = region.of(mask)[:, :, None] * region.of(prepared.reveal_delta)
    blended += region.of(prepared.background)
    region.of(image)[...] = np.rint(blended, out=blended)


@dataclass(frozen=True)
class RevealView:
    """What defines the image a DNN sees, far smaller than the image: the photo's file (under
    the images folder), the round's reveal rule and every point painted so far (native pixels,
    float32 (N, 2))."""

    image_file: str
    rule: RevealRule
    points: np.ndarray


class ViewComposer:
    """Draws views where the DNN runs: the prepared photos it has seen in memory, in front of
    the prepared folder every process shares."""

    def __init__(self, images_dir: Path, images: PreparedImageCache) -> None:
        self.images_dir = images_dir
        self.images = images

    def prepared(self, view: RevealView) -> PreparedImage:
        return self.images.get(self.images_dir / view.image_file, view.rule)

    def draw(self, view: RevealView) -> tuple[np.ndarray, float]:
        """What the DNN sees of the view, and the share it reveals (``revealed_fraction``)."""
        prepared = self.prepared(view)
        mask = render_mask(view.points, prepared, view.rule)
        return compose(prepared, mask), revealed_fraction(mask)
