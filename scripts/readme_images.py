"""The README's pictures, made small from the browser tests' screenshots.

Run the browser tests with CLICKME_SHOTS_DIR set, then
``python scripts/readme_images.py SHOTS_DIR`` writes docs/images/*.png: each screenshot cut to
scaled to a width, cut to its top part and quantised to a palette (under 150 KB each).
"""

import sys
from pathlib import Path

from PIL import Image

IMAGES_DIR = Path(__file__).resolve().parent.parent / "docs" / "images"

# README picture -> (screenshot, width, the most of its height kept: pixels of the picture).
PICTURES = {
    "game-desktop.png": ("desktop-result.png", 800, 600),
    "game-phone.png": ("phone-result.png", 300, 700),
    "campaign-page.png": ("console-detail.png", 800, 1000),
}
COLOURS = 256


def small_png(shot: Path, target: Path, width: int, max_height: int) -> int:
    """Writes the screenshot ``width`` wide, its top ``max_height`` pixels, in a palette; its
    size in bytes."""
    with Image.open(shot) as image:
        height = round(image.height * width / image.width)
        picture = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    picture = picture.crop((0, 0, width, min(height, max_height)))
    palette = picture.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(target, optimize=True)
    return target.stat().st_size


def main(shots_dir: Path) -> None:
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    for name, (shot, width, max_height) in PICTURES.items():
        size = small_png(shots_dir / shot, IMAGES_DIR / name, width, max_height)
        print(f"{name}: {size / 1024:.0f} KB from {shot}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
