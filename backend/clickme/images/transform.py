"""The evaluation space shared by all DNN work: short side bicubic-resized to 256, centre crop 224.

Native coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``), so a point
maps to the crop by one scale and one offset; the crop is resampled straight from that native box.
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
