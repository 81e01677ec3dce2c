"""The evaluation space: geometry, the crop itself, and upright RGB decoding."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clickme.images.transform import (
    EVAL_RESIZE,
    EVAL_SIZE,
    eval_geometry,
    load_rgb,
    to_eval_space,
)


def test_landscape_geometry_maps_known_points() -> None:
    geometry = eval_geometry(640, 480)
    assert geometry.scale == pytest.approx(EVAL_RESIZE / 480)
    centre, origin, box_corner = geometry.to_eval(np.array([[320, 240], [0, 0], [110, 30]]))
    np.testing.assert_allclose(centre, [EVAL_SIZE / 2, EVAL_SIZE / 2], atol=1e-4)
    np.testing.assert_allclose(origin, [-(640 * 256 / 480 - 224) / 2, -16], atol=1e-4)
    # 224 eval pixels are 420 native ones, centred: the crop starts at native (110, 30)
    np.testing.assert_allclose(box_corner, [0, 0], atol=1e-4)
    assert geometry.native_box() == pytest.approx((110, 30, 530, 450))


def test_portrait_geometry_crops_the_long_side() -> None:
    geometry = eval_geometry(300, 600)
    assert geometry.scale == pytest.approx(256 / 300)
    assert geometry.left == pytest.approx(16)
    assert geometry.top == pytest.approx((600 * 256 / 300 - 224) / 2)
    (top_middle,) = geometry.to_eval(np.array([[150.0, 300.0 - 112 * 300 / 256]]))
    np.testing.assert_allclose(top_middle, [112, 0], atol=1e-3)


def test_geometry_rejects_empty_images() -> None:
    with pytest.raises(ValueError):
        eval_geometry(0, 10)


def test_eval_crop_shape_and_where_a_marker_lands() -> None:
    width, height = 640, 480
    pixels = np.full((height, width, 3), 90, dtype=np.uint8)
    marker = (400, 300)  # native (x, y)
    pixels[marker[1] - 6 : marker[1] + 6, marker[0] - 6 : marker[0] + 6] = (250, 20, 20)
    crop = to_eval_space(Image.fromarray(pixels))
    assert crop.shape == (EVAL_SIZE, EVAL_SIZE, 3)
    assert crop.dtype == np.uint8
    x, y = np.rint(eval_geometry(width, height).to_eval(np.array([marker]))[0]).astype(int)
    np.testing.assert_array_equal(crop[y, x], (250, 20, 20))
    assert (crop[:20, :20] == 90).all()


def test_eval_crop_of_a_uniform_image_is_uniform() -> None:
    crop = to_eval_space(Image.new("RGB", (333, 517), (12, 200, 77)))
    assert (crop == (12, 200, 77)).all()


def test_load_rgb_applies_exif_orientation_and_converts(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated by 90 degrees
    Image.new("L", (60, 40), 128).save(path, exif=exif)
    image = load_rgb(path)
    assert image.size == (40, 60)
    assert image.mode == "RGB"
