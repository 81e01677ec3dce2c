"""The evaluation space shared by all DNN work: short side bicubic-resized to 256, centre crop 224.

Native coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``), so a point
maps to the crop by one scale and one offset; the photo's crop is resampled straight from that
native box. A map's evaluation view is made as torchvision's ``Resize(256, NEAREST_EXACT)`` then
``CenterCrop(224)`` make it: pure selection of native pixels (``map_view_indices``).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

EVAL_RESIZE = 256
EVAL_SIZE = 224


@dataclass(frozen=True)
class CropGeometry:
    """Native pixel coordinates -> evaluation crop: ``eval = native * scale - (left, top)``."""

    scale: float
    left: float
    top: float
    size: int = EVAL_SIZE

    def to_eval(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) native (x, y) -> (N, 2) evaluation-crop (x, y), float32."""
        points = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
        offset = np.array([self.left, self.top], dtype=np.float32)
        return points * np.float32(self.scale) - offset

    def native_box(self) -> tuple[float, float, float, float]:
        """The (left, top, right, bottom) native region that the crop shows."""
        side = self.size / self.scale
        left, top = self.left / self.scale, self.top / self.scale
        return left, top, left + side, top + side


def eval_geometry(width: int, height: int) -> CropGeometry:
    """The geometry of the evaluation crop of a ``width`` x ``height`` image."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    scale = EVAL_RESIZE / min(width, height)
    return CropGeometry(
        scale=scale,
        left=(width * scale - EVAL_SIZE) / 2,
        top=(height * scale - EVAL_SIZE) / 2,
    )


def nearest_exact_indices(n_in: int, n_out: int) -> np.ndarray:
    """int64 (n_out,): the source index of each output pixel of a nearest-exact resize,
    ``floor((i + 0.5) * n_in / n_out)`` (in exact integers), at most ``n_in - 1``."""
    outputs = np.arange(n_out, dtype=np.int64)
    return np.minimum((2 * outputs + 1) * n_in // (2 * n_out), n_in - 1)


def map_view_indices(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols), 224 each, non-decreasing: the native pixels of a map's evaluation view.
    The short side is resized to 256 and the long one to ``int(256 * long / short)``
    (nearest-exact), then the centre 224 kept from ``int(round((n - 224) / 2))``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    short = min(width, height)
    indices = []
    for n_in in (height, width):
        n_out = EVAL_RESIZE if n_in == short else int(EVAL_RESIZE * n_in / short)
        start = round((n_out - EVAL_SIZE) / 2)  # Python rounds half to even, as torchvision
        indices.append(nearest_exact_indices(n_in, n_out)[start : start + EVAL_SIZE])
    return indices[0], indices[1]


def load_rgb(path: Path) -> Image.Image:
    """Decodes an image file upright (EXIF orientation applied, as browsers show it) in RGB."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        return upright.convert("RGB")


def to_eval_space(image: Image.Image) -> np.ndarray:
    """The uint8 (224, 224, 3) RGB evaluation crop of an image."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    geometry = eval_geometry(*rgb.size)
    crop = rgb.resize((EVAL_SIZE, EVAL_SIZE), Image.Resampling.BICUBIC, box=geometry.native_box())
    return np.asarray(crop, dtype=np.uint8)
