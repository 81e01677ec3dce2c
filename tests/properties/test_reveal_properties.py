"""Hypothesis properties of the reveal geometry: a mask never reveals outside the bubbles, the
same points always give the same mask, bubbles combine by maximum, and the DNN's input shows the
photo exactly where revealed and the background exactly where not."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clickme.images.transform import EVAL_SIZE, eval_geometry
from clickme.scoring.reveal import PreparedImage, RevealRule, compose, render_mask

SIZES = st.tuples(st.integers(32, 900), st.integers(32, 900))
RULES = st.builds(
    RevealRule,
    radius=st.floats(0.01, 0.3),
    softness=st.floats(0.0, 1.0),
    background=st.just("grey"),
    blur_sigma=st.just(0.0),
)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def prepared_of(width: int, height: int, seed: int = 0) -> PreparedImage:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (EVAL_SIZE, EVAL_SIZE, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (EVAL_SIZE, EVAL_SIZE, 3), dtype=np.uint8)
    return PreparedImage(pixels, background, eval_geometry(width, height), width, height)


@st.composite
def painted(draw: st.DrawFn) -> tuple[PreparedImage, RevealRule, np.ndarray]:
    """An image size, a rule and native points, some of them outside the image."""
    width, height = draw(SIZES)
    rule = draw(RULES)
    n = draw(st.integers(0, 40))
    xs = draw(st.lists(st.floats(-0.2 * width, 1.2 * width), min_size=n, max_size=n))
    ys = draw(st.lists(st.floats(-0.2 * height, 1.2 * height), min_size=n, max_size=n))
    points = np.array(list(zip(xs, ys, strict=True)), dtype=np.float32).reshape(-1, 2)
    return prepared_of(width, height), rule, points


def nearest_distance(prepared: PreparedImage, points: np.ndarray) -> np.ndarray:
    """Brute force: each evaluation pixel centre's distance to the nearest point, in eval px."""
    if len(points) == 0:
        return np.full((EVAL_SIZE, EVAL_SIZE), np.inf)
    centres = prepared.geometry.to_eval(points).astype(np.float64)
    grid = np.arange(EVAL_SIZE) + 0.5
    dx = grid[None, None, :] - centres[:, 0, None, None]
    dy = grid[None, :, None] - centres[:, 1, None, None]
    return np.sqrt(dx**2 + dy**2).min(axis=0)


@PROPERTY_SETTINGS
@given(painted())
def test_the_mask_never_reveals_outside_the_bubbles(case) -> None:
    prepared, rule, points = case
    mask = render_mask(points, prepared, rule)
    assert mask.shape == (EVAL_SIZE, EVAL_SIZE) and mask.dtype == np.float32
    assert ((mask >= 0) & (mask <= 1)).all()
    radius = rule.radius_px(prepared.width, prepared.height) * prepared.geometry.scale
    distance = nearest_distance(prepared, points)
    assert not mask[distance > radius * (1 + 1e-4) + 1e-3].any()
    fully = distance < radius * (1 - rule.softness) - 1e-3
    assert (mask[fully] == 1).all()


@PROPERTY_SETTINGS
@given(painted(), st.randoms(use_true_random=False))
def test_the_same_points_give_the_same_mask_in_any_order(case, random) -> None:
    prepared, rule, points = case
    first = render_mask(points, prepared, rule)
    order = list(range(len(points)))
    random.shuffle(order)
    assert np.array_equal(first, render_mask(points, prepared, rule))
    assert np.array_equal(first, render_mask(points[order], prepared, rule))


@PROPERTY_SETTINGS
@given(painted(), st.integers(0, 40))
def test_bubbles_combine_by_maximum_batch_by_batch(case, cut) -> None:
    prepared, rule, points = case
    cut = min(cut, len(points))
    whole = render_mask(points, prepared, rule)
    parts = np.maximum(
        render_mask(points[:cut], prepared, rule), render_mask(points[cut:], prepared, rule)
    )
    assert np.array_equal(whole, parts)


@PROPERTY_SETTINGS
@given(painted())
def test_the_dnn_sees_the_photo_where_revealed_and_the_background_elsewhere(case) -> None:
    prepared, rule, points = case
    mask = render_mask(points, prepared, rule)
    seen = compose(prepared, mask)
    assert np.array_equal(seen[mask == 0], prepared.background[mask == 0])
    assert np.array_equal(seen[mask == 1], prepared.pixels[mask == 1])
