"""Unpacking uploaded zips: hostile entries refused one by one, hostile archives as a whole."""

import io
import warnings
from pathlib import Path

import pytest

from clickme.core.errors import ClickmeError
from clickme.images.upload import ZipLimits, resolve_import_folder, unpack_zip
from tests.images.zips import entry_name, hostile_entries, zip_of

LIMITS = ZipLimits(max_entries=50, max_unpacked_bytes=64 * 1024 * 1024, max_ratio=100)
SLIPS = ("slip_parent", "slip_nested", "slip_absolute", "slip_backslash", "slip_drive")


@pytest.fixture
def photo(demo_photos: list[Path]) -> Path:
    return demo_photos[0]


@pytest.fixture
def target(tmp_path: Path) -> Path:
    folder = tmp_path / "sandbox" / "target"
    folder.mkdir(parents=True)
    return folder


def files_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if not path.is_dir()}


def test_hostile_entries_are_refused_and_nothing_lands_outside(photo: Path, target: Path) -> None:
    entries = hostile_entries(photo)
    upload = io.BytesIO(zip_of([(photo.name, photo.read_bytes()), *entries.values()]))

    unpacked, problems = unpack_zip(upload, target, LIMITS)

    refused = {problem.path: problem.message for problem in problems}
    for kind in SLIPS:
        assert refused[entry_name(entries[kind])] == "refused: the path leaves the target folder"
    assert refused[entry_name(entries["symlink"])] == "refused: a symbolic link"
    assert "zip bomb" in refused[entry_name(entries["zip_bomb"])]
    for kind in ("long_name", "long_folder"):
        assert refused[entry_name(entries[kind])] == "refused: a name in the path is over 255 bytes"
    assert len(refused) == len(SLIPS) + 4
    # The rest is unpacked as plain files for the import to judge (it reports the bad ones).
    judged = ("truncated", "text", "no_synset", "pixel_bomb", "sliver", "narrow", "tiny")
    kept = [photo.name] + [entry_name(entries[kind]) for kind in judged]
    assert unpacked == len(kept)
    assert files_under(target.parent.parent) == {f"sandbox/target/{name}" for name in kept}
    assert not any(path.is_symlink() for path in target.rglob("*"))


def test_refuses_too_many_entries(target: Path) -> None:
    upload = io.BytesIO(zip_of([(f"n01440764_{i}.JPEG", b"x") for i in range(51)]))
    with pytest.raises(ClickmeError) as refused:
        unpack_zip(upload, target, LIMITS)
    assert (refused.value.status, refused.value.code) == (422, "too_many_entries")
    assert files_under(target) == set()


def test_refuses_a_zip_that_unpacks_too_large(target: Path) -> None:
    limits = ZipLimits(max_entries=50, max_unpacked_bytes=1000, max_ratio=10_000)
    upload = io.BytesIO(
        zip_of([("n01440764_a.JPEG", bytes(600)), ("n01440764_b.JPEG", bytes(600))])
    )
    with pytest.raises(ClickmeError) as refused:
        unpack_zip(upload, target, limits)
    assert refused.value.code == "zip_too_large"
    assert files_under(target) == set()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really", b"plain text"])
def test_refuses_what_is_not_a_zip(target: Path, content: bytes) -> None:
    with pytest.raises(ClickmeError) as refused:
        unpack_zip(io.BytesIO(content), target, LIMITS)
    assert (refused.value.status, refused.value.code) == (422, "bad_zip")


def test_a_repeated_name_and_a_file_named_like_a_folder_are_refused(target: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate
        upload = io.BytesIO(
            zip_of(
                [
                    ("n01440764_a.JPEG", b"first"),
                    ("n01440764_a.JPEG", b"second"),
                    ("n01440764", b"a file"),
                    ("n01440764/b.JPEG", b"inside"),
                ]
            )
        )
    unpacked, problems = unpack_zip(upload, target, LIMITS)
    assert unpacked == 2
    assert [problem.message for problem in problems] == [
        "refused: a second entry with the same name",
        "cannot unpack: a file of the zip has the name of its folder",
    ]
    assert (target / "n01440764_a.JPEG").read_bytes() == b"first"


def test_an_entry_of_an_unknown_compression_method_is_refused(target: Path) -> None:
    data = bytearray(zip_of([("n01440764_a.JPEG", b"photo")]))
    for header, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local, central
        data[data.index(header) + method_at] = 99  # no such compression method
    unpacked, problems = unpack_zip(io.BytesIO(bytes(data)), target, LIMITS)
    assert unpacked == 0
    assert [problem.message for problem in problems] == [
        "cannot unpack: That compression method is not supported"
    ]
    assert files_under(target) == set()


def test_import_folder_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "set-a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link-out").symlink_to(tmp_path / "outside", target_is_directory=True)

    assert resolve_import_folder(root, "set-a") == (root / "set-a").resolve()
    assert resolve_import_folder(root, str(root / "set-a")) == (root / "set-a").resolve()
    for path, code in [
        ("../outside", "outside_import_root"),
        (str(tmp_path / "outside"), "outside_import_root"),
        ("link-out", "outside_import_root"),
        ("missing", "folder_not_found"),
        ("a\x00b", "invalid_path"),
    ]:
        with pytest.raises(ClickmeError) as refused:
            resolve_import_folder(root, path)
        assert refused.value.code == code, path
    with pytest.raises(ClickmeError) as refused:
        resolve_import_folder(None, "set-a")
    assert (refused.value.status, refused.value.code) == (403, "import_root_not_set")
