"""Display versions of the photos: what players download, sized for screens.

A display version has its long side at most ``max_side`` pixels (the original's when smaller),
as a JPEG of good quality, made once and kept in the display folder of the data dir for every
process. Its URL names its content (the original's hash, the size and this module's format), so
browsers keep it for good. Points, the DNN and the maps still use the original (native pixels).
"""

import contextlib
import os
import threading
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps

from clickme.images.models import Image

# Bump when ``_encode`` changes what it makes: URLs change with it, so browsers fetch anew.
DISPLAY_FORMAT = 1
JPEG_QUALITY = 85


def display_key(image: Image, max_side: int) -> str:
    """The display version's name: the original's content hash, the size and the format."""
    return f"{image.sha256[:32]}-{max_side}-v{DISPLAY_FORMAT}"


def display_url(image: Image, max_side: int) -> str:
    return f"/api/images/{image.id}/display/{display_key(image, max_side)}.jpg"


def display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size shown: the long side cut to ``max_side``, the aspect ratio kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(original: Path, target: Path, max_side: int) -> None:
    """Writes the display JPEG; a JPEG original already small enough and no larger than the
    re-encoded one is kept as it is (no second loss of quality)."""
    with PILImage.open(original) as image:
        size = display_size(image.width, image.height, max_side)
        is_small_jpeg = image.format == "JPEG" and size == image.size
        image.draft("RGB", size)  # JPEG: decode at a reduced scale, much faster for big photos
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    rgb = rgb.resize(display_size(*rgb.size, max_side), PILImage.Resampling.LANCZOS)
    rgb.save(target, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    if is_small_jpeg and original.stat().st_size <= target.stat().st_size:
        target.write_bytes(original.read_bytes())


def display_file(images_dir: Path, display_dir: Path, image: Image, max_side: int) -> Path:
    """The photo's display version, made now if it is not kept yet (written under a temporary
    name, then renamed: other processes never see half a file)."""
    target = display_dir / f"{display_key(image, max_side)}.jpg"
    if target.is_file():
        return target
    display_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        _encode(images_dir / image.file_name, partial, max_side)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target
