"""The README's pictures, made small from the browser tests' screenshots.

Run the browser tests with CLICKME_SHOTS_DIR set, then
``python scripts/readme_images.py SHOTS_DIR`` writes docs/images/*.png: each screenshot cut to
its top part, scaled to a width and quantised to a palette (well under 150 KB each).
"""

import sys
from pathlib import Path

from PIL import Image

IMAGES_DIR = Path(__file__).resolve().parent.parent / "docs" / "images"

# README picture -> (screenshot, width in pixels, the most of its height kept, in pixels).
PICTURES = {
    "game-desktop.png": ("desktop-result.png", 800, 800),
    "game-phone.png": ("phone-result.png", 300, 844),
    "campaign-page.png": ("console-detail.png", 800, 1400),
}
COLOURS = 96


def small_png(shot: Path, target: Path, width: int, max_height: int) -> int:
    """Writes the top of the screenshot, ``width`` wide, in a palette; its size in bytes."""
    with Image.open(shot) as image:
        picture = image.convert("RGB").crop((0, 0, image.width, min(image.height, max_height)))
    height = round(picture.height * width / picture.width)
    picture = picture.resize((width, height), Image.Resampling.LANCZOS)
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
