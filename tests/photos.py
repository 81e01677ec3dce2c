"""Real photos for the tests without the ImageNet sample: the demo photos that ship inside
scikit-image, saved as ImageNet-named JPEG files (`<synset>_<class name>.JPEG`), in synset order.

The default DNN recognises each of them (README: coffee -> espresso, chelsea -> tabby, ...), so
the tests that play rounds, import folders or score photos run on a fresh clone as well.
"""

from pathlib import Path

from PIL import Image

from clickme.images.labels import class_name, synset_of
from clickme.images.service import DEMO_PHOTOS

JPEG_QUALITY = 90


def photo_file_name(class_index: int) -> str:
    """The ImageNet sample's naming: `n01443537_goldfish.JPEG` (spaces become underscores)."""
    return f"{synset_of(class_index)}_{class_name(class_index).replace(' ', '_')}.JPEG"


def write_demo_photos(folder: Path) -> list[Path]:
    """The five demo photos as ImageNet-named RGB JPEG files in the folder, in synset order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for photo in sorted(DEMO_PHOTOS, key=lambda demo: synset_of(demo.class_index)):
        target = folder / photo_file_name(photo.class_index)
        with Image.open(photo.path) as source:
            source.convert("RGB").save(target, "JPEG", quality=JPEG_QUALITY)
        written.append(target)
    return written
