"""Importing ImageNet-named folders and the demo photos into image sets (SQLite and PostgreSQL)."""

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image as PILImage
from PIL import ImageOps

from clickme.core.db import Database
from clickme.images.labels import index_of_synset, synset_of
from clickme.images.service import (
    DEMO_PHOTOS,
    DEMO_SET,
    get_image,
    image_file_path,
    import_demo_set,
    import_directory,
    list_images,
    synset_from_path,
)

SAMPLE_COUNT = 4


@pytest.fixture
def sample_files(demo_photos: list[Path]) -> list[Path]:
    return demo_photos[:SAMPLE_COUNT]


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "images"


def flat_folder(root: Path, sources: list[Path]) -> Path:
    """`nXXXXXXXX_name.JPEG` files side by side."""
    root.mkdir(parents=True)
    for source in sources:
        shutil.copyfile(source, root / source.name)
    return root


def class_folders(root: Path, sources: list[Path]) -> Path:
    """`nXXXXXXXX/photo.jpeg` files (the synset only in the folder name, lower-case extension)."""
    for source in sources:
        folder = root / source.name[:9]
        folder.mkdir(parents=True)
        shutil.copyfile(source, folder / "photo.jpeg")
    return root


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_files(images_dir: Path) -> list[Path]:
    return sorted(images_dir.iterdir())


@pytest.mark.parametrize("layout", [flat_folder, class_folders])
def test_imports_a_folder_with_labels_sizes_and_stored_copies(
    database: Database,
    tmp_path: Path,
    images_dir: Path,
    sample_files: list[Path],
    layout: Callable[[Path, list[Path]], Path],
) -> None:
    folder = layout(tmp_path / "incoming", sample_files)
    with database.session() as session:
        report = import_directory(session, folder, "sample", images_dir)
    assert (report.image_set, report.imported, report.duplicates) == ("sample", SAMPLE_COUNT, 0)
    assert report.problems == []

    with database.session() as session:
        images = list_images(session, "sample")
    assert len(images) == SAMPLE_COUNT
    for image, source in zip(images, sample_files, strict=True):
        assert image.class_index == index_of_synset(source.name[:9])
        assert image.synset == synset_of(image.class_index)
        assert image.sha256 == sha256_of(source)
        with PILImage.open(source) as photo:
            assert (image.width, image.height) == photo.size
        stored = image_file_path(images_dir, image)
        assert stored == images_dir / f"{image.sha256}.jpg"
        assert stored.read_bytes() == source.read_bytes()
    assert len(stored_files(images_dir)) == SAMPLE_COUNT


def test_reimport_is_idempotent_within_a_set(
    database: Database, tmp_path: Path, images_dir: Path, sample_files: list[Path]
) -> None:
    folder = flat_folder(tmp_path / "incoming", sample_files)
    shutil.copyfile(sample_files[0], folder / f"{sample_files[0].stem}_copy.JPEG")
    with database.session() as session:
        first = import_directory(session, folder, "sample", images_dir)
        again = import_directory(session, folder, "sample", images_dir)
        other_set = import_directory(session, folder, "other", images_dir)
    assert (first.imported, first.duplicates) == (SAMPLE_COUNT, 1)
    assert (again.imported, again.duplicates, again.problems) == (0, SAMPLE_COUNT + 1, [])
    assert (other_set.imported, other_set.duplicates) == (SAMPLE_COUNT, 1)
    with database.session() as session:
        assert len(list_images(session, "sample")) == SAMPLE_COUNT
        assert len(list_images(session, "other")) == SAMPLE_COUNT
    assert len(stored_files(images_dir)) == SAMPLE_COUNT


def test_bad_files_are_reported_and_the_rest_still_import(
    database: Database, tmp_path: Path, images_dir: Path, sample_files: list[Path]
) -> None:
    good, truncated_source, unlabelled, unknown = sample_files
    folder = flat_folder(tmp_path / "incoming", [good])
    (folder / "n01440764_x.JPEG").write_text("not a photo at all\n")
    (folder / "n01443537_truncated.JPEG").write_bytes(truncated_source.read_bytes()[:4000])
    shutil.copyfile(unlabelled, folder / "holiday.JPEG")
    shutil.copyfile(unknown, folder / "n99999999_mystery.JPEG")
    PILImage.open(good).save(folder / "n01440764_scan.tif")
    (folder / ".DS_Store").write_bytes(b"\0\1\2")
    (folder / "README.md").write_text("# Photos from the field trip\n")

    with database.session() as session:
        report = import_directory(session, folder, "sample", images_dir)

    assert (report.imported, report.duplicates) == (1, 0)
    assert report.skipped == ["README.md"]  # not a photo; hidden files are not even listed
    problems = {problem.path: problem.message for problem in report.problems}
    assert sorted(problems) == [
        "holiday.JPEG",
        "n01440764_scan.tif",
        "n01440764_x.JPEG",
        "n01443537_truncated.JPEG",
        "n99999999_mystery.JPEG",
    ]
    assert "not an image" in problems["n01440764_x.JPEG"]
    assert "truncated" in problems["n01443537_truncated.JPEG"]
    assert "no ImageNet synset" in problems["holiday.JPEG"]
    assert "n99999999 is not one of the 1000" in problems["n99999999_mystery.JPEG"]
    assert "unsupported image format TIFF" in problems["n01440764_scan.tif"]
    assert stored_files(images_dir) == [images_dir / f"{sha256_of(good)}.jpg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_reported(
    database: Database, tmp_path: Path, images_dir: Path, sample_files: list[Path]
) -> None:
    folder = flat_folder(tmp_path / "incoming", sample_files[:2])
    (folder / sample_files[0].name).chmod(0)
    with database.session() as session:
        report = import_directory(session, folder, "sample", images_dir)
    assert report.imported == 1
    assert [problem.path for problem in report.problems] == [sample_files[0].name]
    assert "cannot read the file" in report.problems[0].message


@pytest.mark.parametrize("limit_below_size", [1, 3], ids=["warning-range", "error-range"])
def test_decompression_bombs_are_refused(
    database: Database,
    tmp_path: Path,
    images_dir: Path,
    sample_files: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    limit_below_size: int,
) -> None:
    """Pillow warns above MAX_IMAGE_PIXELS and fails above twice that: both are refused."""
    with PILImage.open(sample_files[0]) as photo:
        pixels = photo.width * photo.height
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", pixels // limit_below_size - 1)
    folder = flat_folder(tmp_path / "incoming", sample_files[:1])
    with database.session() as session:
        report = import_directory(session, folder, "sample", images_dir)
    assert report.imported == 0
    assert len(report.problems) == 1
    assert "decompression bomb" in report.problems[0].message


def test_exif_rotated_photo_is_stored_upright(
    database: Database, tmp_path: Path, images_dir: Path, sample_files: list[Path]
) -> None:
    """Browsers honour EXIF orientation, so the stored pixels must already be turned."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    source = folder / "n01440764_rotated.JPEG"
    with PILImage.open(sample_files[0]) as photo:
        exif = photo.getexif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        photo.save(source, exif=exif, quality=95)
    with PILImage.open(source) as rotated:
        expected = np.asarray(ImageOps.exif_transpose(rotated))

    with database.session() as session:
        report = import_directory(session, folder, "sample", images_dir)
        image = list_images(session, "sample")[0]
    assert report.imported == 1
    assert (image.width, image.height) == (expected.shape[1], expected.shape[0])
    stored = image_file_path(images_dir, image)
    assert stored.name == f"{sha256_of(source)}.png"
    with PILImage.open(stored) as upright:
        np.testing.assert_array_equal(np.asarray(upright), expected)


def test_missing_folder_is_an_error(database: Database, tmp_path: Path, images_dir: Path) -> None:
    with database.session() as session, pytest.raises(NotADirectoryError):
        import_directory(session, tmp_path / "absent", "sample", images_dir)


@pytest.mark.parametrize(
    ("relative", "synset"),
    [
        ("n01440764_10026.JPEG", "n01440764"),
        ("n01440764.png", "n01440764"),
        ("n01440764/anything.jpg", "n01440764"),
        ("train/n01443537/n01443537_1.JPEG", "n01443537"),
        ("holiday.JPEG", None),
        ("n0144076_short.JPEG", None),
        ("n014407641_long.JPEG", None),
    ],
)
def test_synset_from_path(relative: str, synset: str | None) -> None:
    assert synset_from_path(Path(relative)) == synset


def test_demo_set_holds_the_five_photos_with_their_labels(
    database: Database, images_dir: Path
) -> None:
    with database.session() as session:
        report = import_demo_set(session, images_dir)
        again = import_demo_set(session, images_dir)
    assert (report.image_set, report.imported, report.problems) == (DEMO_SET, 5, [])
    assert (again.imported, again.duplicates) == (0, 5)

    with database.session() as session:
        images = {image.original_name: image for image in list_images(session, DEMO_SET)}
        assert get_image(session, images["coffee.png"].id) == images["coffee.png"]
    assert {name: image.class_index for name, image in images.items()} == {
        "coffee.png": 967,
        "chelsea.png": 281,
        "camera.png": 872,
        "motorcycle_left.png": 665,
        "rocket.jpg": 657,
    }
    for photo in DEMO_PHOTOS:
        pixels = getattr(skimage.data, photo.name)()
        if photo.name == "stereo_motorcycle":
            pixels = pixels[0]
        image = images[photo.file_name]
        assert (image.height, image.width) == pixels.shape[:2]
        with PILImage.open(image_file_path(images_dir, image)) as stored:
            np.testing.assert_array_equal(np.asarray(stored), pixels)
