"""Hypothesis properties of point batches (validation, packing) and of map aggregation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clickme.game.points import pack_points, unpack_points, xy_of
from clickme.game.schemas import PointBatchIn
from clickme.maps.aggregate import MapSettings, human_map, points_map

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
POINT = st.tuples(
    st.floats(-1e4, 1e4, width=32), st.floats(-1e4, 1e4, width=32), st.integers(0, 3_600_000)
)


@PROPERTY_SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["seq", "points", "pointer_type", "extra"]), JSON_VALUES, max_size=4
    )
    | st.fixed_dictionaries(
        {"seq": st.integers(-5, 2_000_000), "points": st.lists(st.lists(JSON_SCALARS, max_size=4))}
    )
)
def test_a_point_batch_is_either_refused_or_holds_only_sane_points(body) -> None:
    try:
        batch = PointBatchIn.model_validate(body)
    except ValidationError:
        return
    assert 1 <= batch.seq <= 1_000_000 and batch.points
    for x, y, t in batch.points:
        assert math.isfinite(x) and math.isfinite(y) and 0 <= t <= 3_600_000


@PROPERTY_SETTINGS
@given(st.lists(POINT, max_size=50))
def test_packed_points_unpack_to_the_same_points(points) -> None:
    unpacked = unpack_points([pack_points(points)]) if points else unpack_points([])
    assert [tuple(row) for row in unpacked.tolist()] == points


@st.composite
def rounds_on_an_image(draw: st.DrawFn) -> tuple[int, int, list[np.ndarray]]:
    width, height = draw(st.integers(16, 160)), draw(st.integers(16, 160))
    n_rounds = draw(st.integers(0, 5))
    rounds = []
    for _ in range(n_rounds):
        points = draw(st.lists(POINT, max_size=20))
        packed = unpack_points([pack_points(points)]) if points else unpack_points([])
        rounds.append(xy_of(packed) / 50.0 + np.float32(width / 4))
    return width, height, rounds


def inside_count(xy: np.ndarray, width: int, height: int) -> int:
    x, y = np.floor(xy[:, 0]), np.floor(xy[:, 1])
    return int(((x >= 0) & (x < width) & (y >= 0) & (y < height)).sum())


@PROPERTY_SETTINGS
@given(rounds_on_an_image(), st.sampled_from(["disc", "gaussian"]))
def test_a_map_is_a_float_in_0_1_peaking_at_1_and_blind_to_round_order(case, blur) -> None:
    width, height, rounds = case
    map_settings = MapSettings(blur=blur)
    values = human_map(rounds, width, height, map_settings)
    assert values.shape == (height, width) and values.dtype == np.float32
    assert ((values >= 0) & (values <= 1)).all()
    painted_inside = sum(inside_count(xy, width, height) for xy in rounds)
    assert values.max() == pytest.approx(1.0 if painted_inside else 0.0)
    reordered = human_map(rounds[::-1], width, height, map_settings)
    np.testing.assert_allclose(reordered, values, atol=1e-6)


@PROPERTY_SETTINGS
@given(rounds_on_an_image())
def test_points_are_counted_once_each_where_they_fall(case) -> None:
    width, height, rounds = case
    for xy in rounds:
        counts = points_map(xy, width, height)
        assert counts.sum() == inside_count(xy, width, height)
