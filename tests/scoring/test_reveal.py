"""The reveal geometry: bubble masks, backgrounds, composition and the prepared-image cache."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clickme.images.transform import EVAL_SIZE
from clickme.scoring import reveal
from clickme.scoring.reveal import (
    GREY_LEVEL,
    PreparedImage,
    PreparedImageCache,
    RevealRule,
    compose,
    compose_region,
    grow_mask,
    nothing_revealed,
    prepare_image,
    render_mask,
    revealed_fraction,
    row_sums,
)

WIDTH, HEIGHT = 600, 400
SOFT = RevealRule(radius=0.05, softness=0.5, background="blur", blur_sigma=6.0)


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600 x 400 image with structure at every scale (so blur visibly changes it)."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("reveal") / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def prepared(photo_path: Path) -> PreparedImage:
    return prepare_image(photo_path, SOFT)


def reference_mask(points: np.ndarray, prepared: PreparedImage, rule: RevealRule) -> np.ndarray:
    """The definition, evaluated densely: max over bubbles of the linear fade at pixel centres."""
    centres = prepared.geometry.to_eval(points).astype(np.float64)
    radius = rule.radius_px(prepared.width, prepared.height) * prepared.geometry.scale
    grid = np.arange(EVAL_SIZE) + 0.5
    xs, ys = np.meshgrid(grid, grid)
    mask = np.zeros((EVAL_SIZE, EVAL_SIZE))
    for cx, cy in centres:
        distance = np.hypot(xs - cx, ys - cy)
        if rule.softness == 0:
            value = (distance <= radius).astype(float)
        else:
            value = np.clip((radius - distance) / (radius * rule.softness), 0, 1)
        mask = np.maximum(mask, value)
    return mask


def random_points(seed: int, count: int) -> np.ndarray:
    """Native points spread over (and a little beyond) the whole image."""
    rng = np.random.default_rng(seed)
    return rng.uniform((-40, -40), (WIDTH + 40, HEIGHT + 40), size=(count, 2)).astype(np.float32)


def test_radius_is_a_fraction_of_the_short_side() -> None:
    assert SOFT.radius_px(600, 400) == pytest.approx(20.0)
    assert SOFT.radius_px(300, 900) == pytest.approx(15.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"radius": 0.0},
        {"radius": 1.5},
        {"softness": -0.1},
        {"softness": 1.1},
        {"background": "pink"},
        {"blur_sigma": 0.0},
    ],
)
def test_rule_rejects_nonsense(bad: dict[str, object]) -> None:
    fields = {"radius": 0.05, "softness": 0.5, "background": "blur", "blur_sigma": 4.0} | bad
    with pytest.raises(ValueError):
        RevealRule(**fields)  # type: ignore[arg-type]


def test_prepared_image_has_the_eval_crop_and_native_size(prepared: PreparedImage) -> None:
    assert prepared.pixels.shape == prepared.background.shape == (EVAL_SIZE, EVAL_SIZE, 3)
    assert prepared.pixels.dtype == prepared.background.dtype == np.uint8
    assert (prepared.width, prepared.height) == (WIDTH, HEIGHT)


def test_one_bubble_is_full_at_its_centre_and_empty_far_away(prepared: PreparedImage) -> None:
    mask = render_mask(np.array([[300.0, 200.0]]), prepared, SOFT)
    assert mask.shape == (EVAL_SIZE, EVAL_SIZE)
    assert mask.dtype == np.float32
    assert mask[112, 112] == 1.0
    assert mask[10, 10] == 0.0
    assert mask.min() == 0.0 and mask.max() == 1.0


def test_the_soft_edge_fades_monotonically(prepared: PreparedImage) -> None:
    mask = render_mask(np.array([[300.0, 200.0]]), prepared, SOFT)
    ray = mask[112, 112:]
    assert (np.diff(ray) <= 0).all()
    partly = ray[(ray > 0) & (ray < 1)]
    assert len(partly) >= 5  # a real fade, several pixels wide


def test_masks_match_the_definition_everywhere(prepared: PreparedImage) -> None:
    """Nothing revealed outside the bubbles, fully inside their cores, the exact fade between;
    including bubbles that hang over the crop's edge or lie outside it."""
    points = random_points(seed=1, count=40)
    np.testing.assert_allclose(
        render_mask(points, prepared, SOFT), reference_mask(points, prepared, SOFT), atol=1e-5
    )


def test_hard_bubbles_match_the_definition(prepared: PreparedImage) -> None:
    hard = RevealRule(radius=0.08, softness=0.0, background="grey", blur_sigma=0.0)
    points = random_points(seed=2, count=25)
    mask = render_mask(points, prepared, hard)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    disagreeing = mask != reference_mask(points, prepared, hard)
    assert disagreeing.sum() <= 2  # only pixel centres within float rounding of a rim


def test_same_points_give_the_same_mask(prepared: PreparedImage) -> None:
    points = random_points(seed=3, count=200)
    first = render_mask(points, prepared, SOFT)
    again = render_mask(points.copy(), prepared, SOFT)
    shuffled = render_mask(points[::-1].copy(), prepared, SOFT)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, shuffled)


def test_masks_build_up_batch_by_batch(prepared: PreparedImage) -> None:
    points = random_points(seed=4, count=120)
    whole = render_mask(points, prepared, SOFT)
    parts = np.maximum(
        render_mask(points[:50], prepared, SOFT), render_mask(points[50:], prepared, SOFT)
    )
    np.testing.assert_array_equal(whole, parts)


def test_no_points_and_far_away_points_reveal_nothing(prepared: PreparedImage) -> None:
    assert not render_mask(np.zeros((0, 2), np.float32), prepared, SOFT).any()
    # the crop drops 125 native pixels at the left: a bubble of radius 20 there shows nothing
    assert not render_mask(np.array([[40.0, 200.0]]), prepared, SOFT).any()


def test_points_must_be_finite(prepared: PreparedImage) -> None:
    with pytest.raises(ValueError):
        render_mask(np.array([[np.nan, 3.0]]), prepared, SOFT)


def test_rendering_a_few_hundred_points_is_fast(prepared: PreparedImage) -> None:
    rng = np.random.default_rng(5)
    start = np.array([300.0, 200.0])
    stroke = (start + rng.normal(0, 6, size=(300, 2)).cumsum(axis=0)).astype(np.float32)
    render_mask(stroke, prepared, SOFT)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        render_mask(stroke, prepared, SOFT)
        timings.append(time.perf_counter() - started)
    assert np.median(timings) < 0.010  # about 1 ms on two cores; generous for loaded machines


def test_revealed_fraction() -> None:
    assert revealed_fraction(np.zeros((4, 4), np.float32)) == 0.0
    assert revealed_fraction(np.ones((4, 4), np.float32)) == 1.0
    half = np.zeros((4, 4), np.float32)
    half[:2] = 1.0
    assert revealed_fraction(half) == 0.5


HARD_GREY = RevealRule(radius=0.08, softness=0.0, background="grey", blur_sigma=0.0)


@pytest.mark.parametrize("rule", [SOFT, HARD_GREY], ids=["soft", "hard"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_mask_grown_batch_by_batch_in_the_regions_touched_is_the_whole_render(
    photo_path: Path, rule: RevealRule, seed: int
) -> None:
    """A player's batches (a few points close together, some near or past the edges): each
    grows the mask only inside the region it returns, that region is the batch's bounding box
    (not whole rows), and the mask, the row sums, the share and the composed image kept up to
    date in those regions only are exactly what drawing everything at once gives."""
    prepared = prepare_image(photo_path, rule)
    rng = np.random.default_rng(seed)
    mask = np.zeros((EVAL_SIZE, EVAL_SIZE), np.float32)
    sums, image = row_sums(mask), compose(prepared, mask)
    radius = rule.radius_px(WIDTH, HEIGHT) * prepared.geometry.scale
    painted = []
    for _ in range(12):
        start = rng.uniform([-40, -40], [WIDTH + 40, HEIGHT + 40])
        batch = (start + rng.normal(0, 8, size=(4, 2))).astype(np.float32)
        painted.append(batch)
        before = mask.copy()
        region = grow_mask(mask, batch, prepared, rule)
        outside = np.ones_like(mask, dtype=bool)
        outside[region.top : region.bottom, region.left : region.right] = False
        np.testing.assert_array_equal(mask[outside], before[outside])
        centres = prepared.geometry.to_eval(batch)
        if not region.empty:  # a box about the batch's bubbles, not the crop's whole width
            spread = centres.max(axis=0) - centres.min(axis=0)
            assert region.right - region.left <= spread[0] + 2 * radius + 4
            assert region.bottom - region.top <= spread[1] + 2 * radius + 4
        sums[region.top : region.bottom] = row_sums(mask[region.top : region.bottom])
        compose_region(prepared, mask, image, region)
    whole = render_mask(np.concatenate(painted), prepared, rule)
    np.testing.assert_array_equal(mask, whole)
    np.testing.assert_array_equal(image, compose(prepared, whole))
    assert revealed_fraction(mask, sums) == revealed_fraction(whole)
    assert revealed_fraction(whole) == pytest.approx(np.mean(whole, dtype=np.float64), abs=1e-12)


# A wide bubble with a thin fade: the fade magnifies a distance's last float32 bit.
THIN_EDGE = RevealRule(radius=0.1, softness=0.1, background="grey", blur_sigma=0.0)


@pytest.mark.parametrize("rule", [SOFT, HARD_GREY, THIN_EDGE], ids=["soft", "hard", "thin"])
def test_few_bubbles_drawn_at_once_are_the_square_by_square_mask_bit_for_bit(
    prepared: PreparedImage, rule: RevealRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's few bubbles over their box are drawn in one broadcast: every pixel's value
    is the float32 that drawing each bubble's square gives (points anywhere, near and past the
    edges, in strokes and scattered; the whole crop and boxes)."""
    rng = np.random.default_rng(11)
    for case in range(60):
        count = int(rng.integers(1, 9))
        if case % 2:  # a stroke
            start = rng.uniform([-40, -40], [WIDTH + 40, HEIGHT + 40])
            points = (start + rng.normal(0, 10, size=(count, 2))).astype(np.float32)
        else:
            points = random_points(case, count)
        # many, some near the crop's top and left edges (where float32 rounding differs most)
        painted = np.concatenate([random_points(1000 + case, 20), random_points(case, 20) / 4])
        masks = []
        for most_at_once in (0, 1 << 30):  # square by square; all at once
            monkeypatch.setattr(reveal, "_AT_ONCE_MAX_VALUES", most_at_once)
            mask = render_mask(painted, prepared, rule)
            grow_mask(mask, points, prepared, rule)
            masks.append(render_mask(points, prepared, rule))
            masks.append(mask)
        np.testing.assert_array_equal(masks[0], masks[2])
        np.testing.assert_array_equal(masks[1], masks[3])


def test_nothing_revealed_is_what_drawing_no_point_gives(prepared: PreparedImage) -> None:
    mask, sums, image = nothing_revealed(prepared)
    drawn = render_mask(np.empty((0, 2), np.float32), prepared, SOFT)
    np.testing.assert_array_equal(mask, drawn)
    assert mask.dtype == drawn.dtype
    np.testing.assert_array_equal(sums, row_sums(drawn))
    np.testing.assert_array_equal(image, compose(prepared, drawn))
    assert image is not prepared.background  # grown in place: a copy


def test_compose_shows_the_image_only_where_revealed(prepared: PreparedImage) -> None:
    mask = render_mask(np.array([[300.0, 200.0]]), prepared, SOFT)
    seen = compose(prepared, mask)
    assert seen.dtype == np.uint8 and seen.shape == prepared.pixels.shape
    full, empty = mask == 1.0, mask == 0.0
    np.testing.assert_array_equal(seen[full], prepared.pixels[full])
    np.testing.assert_array_equal(seen[empty], prepared.background[empty])
    halfway = compose(prepared, np.full_like(mask, 0.5))
    expected = (prepared.pixels.astype(float) + prepared.background) / 2
    assert np.abs(halfway - expected).max() <= 0.5


def test_blur_background_is_a_smoothed_image(prepared: PreparedImage) -> None:
    background = prepared.background.astype(float)
    assert abs(background.mean() - prepared.pixels.mean()) < 2
    assert background.std() < prepared.pixels.std() / 5  # random pixels average out
    assert np.abs(np.diff(background, axis=1)).mean() < 1


def test_grey_background(photo_path: Path) -> None:
    grey = prepare_image(photo_path, RevealRule(0.05, 0.5, "grey", 0.0))
    assert (grey.background == GREY_LEVEL).all()


def test_noise_background_is_fixed_per_image(photo_path: Path, tmp_path: Path) -> None:
    rule = RevealRule(0.05, 0.5, "noise", 0.0)
    first = prepare_image(photo_path, rule).background
    np.testing.assert_array_equal(first, prepare_image(photo_path, rule).background)
    assert first.std() > 50
    copy = tmp_path / "copy.png"
    shutil.copy(photo_path, copy)
    assert (prepare_image(copy, rule).background != first).mean() > 0.9


def test_cache_reuses_and_evicts(photo_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.png"
    shutil.copy(photo_path, other)
    cache = PreparedImageCache(max_items=2)
    first = cache.get(photo_path, SOFT)
    assert cache.get(photo_path, SOFT) is first
    wider_brush = RevealRule(0.2, 0.1, "blur", SOFT.blur_sigma)
    assert cache.get(photo_path, wider_brush) is first  # the brush does not change the image
    grey = cache.get(photo_path, RevealRule(0.05, 0.5, "grey", 0.0))
    assert grey is not first
    cache.get(other, SOFT)  # evicts the least recently used: the blurred photo
    assert len(cache) == 2
    assert cache.get(photo_path, SOFT) is not first


def assert_same_prepared(one: PreparedImage, other: PreparedImage) -> None:
    np.testing.assert_array_equal(one.pixels, other.pixels)
    np.testing.assert_array_equal(one.background, other.background)
    assert (one.width, one.height, one.geometry) == (other.width, other.height, other.geometry)


def test_prepared_images_kept_on_disk_serve_another_process_without_decoding(
    photo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "prepared"
    fresh = PreparedImageCache(4, folder).get(photo_path, SOFT)
    assert_same_prepared(fresh, prepare_image(photo_path, SOFT))
    assert len(list(folder.glob("*.npz"))) == 1 and not list(folder.glob(".*"))

    def no_decoding(_path: Path) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(reveal, "load_rgb", no_decoding)
    kept = PreparedImageCache(4, folder).get(photo_path, SOFT)  # a new process's cache
    assert_same_prepared(kept, fresh)
    with pytest.raises(AssertionError, match="decoded again"):  # another background: prepared
        PreparedImageCache(4, folder).get(photo_path, RevealRule(0.05, 0.5, "grey", 0.0))


def test_a_changed_or_damaged_prepared_file_is_prepared_anew(
    photo_path: Path, tmp_path: Path
) -> None:
    folder, photo = tmp_path / "prepared", tmp_path / "photo.png"
    shutil.copy(photo_path, photo)
    PreparedImageCache(4, folder).get(photo, SOFT)
    (kept,) = folder.glob("*.npz")
    kept.write_bytes(kept.read_bytes()[:1000])  # cut short, as by a crash of an old version
    assert_same_prepared(PreparedImageCache(4, folder).get(photo, SOFT), prepare_image(photo, SOFT))
    assert kept.stat().st_size > 1000  # written again

    flipped = Image.open(photo_path).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    time.sleep(0.01)
    flipped.save(photo)  # the same path, another photo
    assert_same_prepared(PreparedImageCache(4, folder).get(photo, SOFT), prepare_image(photo, SOFT))
    assert len(list(folder.glob("*.npz"))) == 2


def test_an_unwritable_folder_only_costs_the_preparation(photo_path: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    prepared = PreparedImageCache(4, blocked / "prepared").get(photo_path, SOFT)
    assert_same_prepared(prepared, prepare_image(photo_path, SOFT))
