"""Zip files made in the test: good ImageNet-named photos and hostile entries of every kind."""

import io
import stat
import zipfile
from pathlib import Path

from PIL import Image as PILImage

BOMB_BYTES = 20 * 1024 * 1024  # zeros: deflate packs them about 1000 times


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    """A deflated zip of (name or ZipInfo, content) entries, as given (no name clean-up)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def sample_entries(photos: list[Path]) -> list[tuple[str, bytes]]:
    """The photos as `nXXXXXXXX_name.JPEG`, the last one as `nXXXXXXXX/name.JPEG` (both namings)."""
    entries = [(photo.name, photo.read_bytes()) for photo in photos[:-1]]
    last = photos[-1]
    entries.append((f"{last.name[:9]}/{last.name[10:]}", last.read_bytes()))
    return entries


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    """A symbolic link as `zip --symlinks` stores it: the mode in the high bits, the target as
    content."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.compress_type = zipfile.ZIP_STORED
    return info, target.encode()


def pixel_bomb_png() -> bytes:
    """A 10000 x 10000 PNG of a few kilobytes: 100 megapixels, over Pillow's bomb limit."""
    buffer = io.BytesIO()
    PILImage.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("L", (width, height), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def hostile_entries(photo: Path) -> dict[str, tuple[str | zipfile.ZipInfo, bytes]]:
    """One entry per attack or bad file, by what it is; each must be refused on its own."""
    jpeg = photo.read_bytes()
    synset = photo.name[:9]
    return {
        "slip_parent": (f"../{synset}_escaped.JPEG", jpeg),
        "slip_nested": (f"{synset}/../../{synset}_escaped2.JPEG", jpeg),
        "slip_absolute": (f"/tmp/{synset}_absolute.JPEG", jpeg),
        "slip_backslash": (f"..\\{synset}_windows.JPEG", jpeg),
        "slip_drive": (f"C:/{synset}_drive.JPEG", jpeg),
        "symlink": symlink_entry(f"{synset}_link.JPEG", "/etc/passwd"),
        "zip_bomb": (f"{synset}_bomb.JPEG", bytes(BOMB_BYTES)),
        "truncated": (f"{synset}_truncated.JPEG", jpeg[: len(jpeg) // 2]),
        "text": (f"{synset}_notes.JPEG", b"this is not a photo\n" * 20),
        "no_synset": ("holiday.JPEG", jpeg),
        "pixel_bomb": (f"{synset}_huge.png", pixel_bomb_png()),
        "long_name": (f"{synset}_{'a' * 300}.JPEG", jpeg),
        "long_folder": (f"{synset}/{'b' * 256}/x.JPEG", jpeg),
        "sliver": (f"{synset}_sliver.png", png_of_size(60_000, 1)),
        "narrow": (f"{synset}_narrow.png", png_of_size(300, 37)),
        "tiny": (f"{synset}_tiny.png", png_of_size(31, 40)),
    }


def entry_name(entry: tuple[str | zipfile.ZipInfo, bytes]) -> str:
    name = entry[0]
    return name.filename if isinstance(name, zipfile.ZipInfo) else name
