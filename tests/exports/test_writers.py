"""Zip members deflated ahead of writing (on the export's worker threads)."""

import zipfile
from pathlib import Path

import numpy as np

from clickme.exports.writers import (
    OVERLAY_DIM,
    OVERLAY_ROWS,
    ZIP_EPOCH,
    DeflatedZipFile,
    deflated,
    image_key,
    map_preview_pixels,
    overlay_pixels,
)


def test_members_deflated_ahead_read_back_with_their_crc_checked(tmp_path: Path) -> None:
    members = {"a/map.npy": bytes(range(256)) * 400, "a/empty.npy": b"", "b/x.npy": b"x" * 7}
    with DeflatedZipFile(tmp_path / "ahead.zip", "w") as archive:
        for name, raw in members.items():
            archive.write_deflated(deflated(name, raw))
    with zipfile.ZipFile(tmp_path / "ahead.zip") as archive:
        assert archive.testzip() is None
        assert archive.namelist() == list(members)
        assert {archive.read(name) for name in members} == set(members.values())
        infos = archive.infolist()
        assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
        assert {info.date_time for info in infos} == {ZIP_EPOCH}
        assert infos[0].compress_size < len(members["a/map.npy"]) // 10


def test_more_than_65535_members_take_zip64(tmp_path: Path) -> None:
    count = 0x10000 + 3
    with DeflatedZipFile(tmp_path / "many.zip", "w") as archive:
        for index in range(count):
            archive.write_deflated(deflated(f"{index}.npy", index.to_bytes(4, "little")))
    with zipfile.ZipFile(tmp_path / "many.zip") as archive:
        assert len(archive.infolist()) == count
        assert archive.read(f"{count - 1}.npy") == (count - 1).to_bytes(4, "little")


def test_image_keys_name_the_image_and_stay_whole_as_webdataset_keys() -> None:
    assert image_key(679, "n03793489", "mouse") == "679_n03793489_mouse"
    assert image_key(7, "n03590841", "jack-o'-lantern") == "7_n03590841_jack-o-lantern"
    assert image_key(8, "n02123045", "tiger cat") == "8_n02123045_tiger_cat"
    assert image_key(9, "n02085936", "St. Bernard") == "9_n02085936_St_Bernard"


def test_overlays_show_the_map_in_colour_over_the_dimmed_photo() -> None:
    photo = np.full((4, 4, 3), 200, dtype=np.uint8)
    values = np.zeros((4, 4))
    values[0, 0], values[0, 1] = 1.0, 0.25
    overlay = overlay_pixels(photo, values).astype(int)
    assert overlay[3, 3].tolist() == [round(200 * OVERLAY_DIM)] * 3  # unpainted: only dimmed
    red, green, blue = overlay[0, 0]
    assert red > 200 and green > 200 and blue < red  # the peak: bright pale yellow
    red, green, blue = overlay[0, 1]
    assert red > 1.5 * 200 * OVERLAY_DIM and red > 1.5 * max(green, blue)  # low values: red


def test_overlays_of_tall_photos_are_made_band_by_band_as_a_whole() -> None:
    rng = np.random.default_rng(2)
    photo = rng.integers(0, 256, (2 * OVERLAY_ROWS + 7, 5, 3), dtype=np.uint8)
    values = rng.random(photo.shape[:2])
    whole = overlay_pixels(photo, values)
    for start in range(0, len(photo), 3):
        np.testing.assert_array_equal(
            whole[start : start + 3],
            overlay_pixels(photo[start : start + 3], values[start : start + 3]),
        )


def test_map_previews_are_8_bit_from_black_to_white() -> None:
    preview = map_preview_pixels(np.array([[0.0, 0.5, 1.0]]))
    assert preview.dtype == np.uint8 and preview.tolist() == [[0, 128, 255]]
