"""Human maps by the published convention, and the valid rounds they are made of."""

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from clickme.campaigns.models import Campaign
from clickme.core.db import Database
from clickme.game.models import PointBatch, Round
from clickme.game.points import pack_points
from clickme.images.models import Image, ImageSet
from clickme.images.transform import map_view_indices
from clickme.maps.aggregate import (
    MapSettings,
    blur,
    disc_diameter,
    disc_kernel,
    disc_mask,
    human_map,
    points_map,
    round_eval_maps,
    to_eval,
)
from clickme.maps.valid import valid_rounds
from clickme.players.models import Player, PlayerExclusion
from clickme.scoring.tables import DnnModel


@pytest.mark.parametrize(
    ("short_side", "diameter"),
    [
        (240, 21), (290, 25), (48, 5), (64, 5), (256, 21), (609, 51),  # the examples
        (100, 9), (375, 31), (512, 43), (2000, 51), (10, 1), (5, 1),
    ],
)  # fmt: skip
def test_disc_diameter_rounds_half_to_even_then_makes_it_odd_and_caps_it(
    short_side: int, diameter: int
) -> None:
    kernel = disc_kernel(short_side)
    assert disc_diameter(short_side) == diameter
    assert kernel.shape == (diameter, diameter)
    assert kernel.dtype == np.float64
    assert kernel.sum() == pytest.approx(1.0)
    assert np.allclose(kernel, kernel.T) and np.allclose(kernel, kernel[::-1])


def test_disc_holds_the_pixels_within_c_of_its_centre() -> None:
    assert disc_mask(21).sum() == 317  # integer points with x^2 + y^2 <= 10^2
    plus = [[False, True, False], [True, True, True], [False, True, False]]
    np.testing.assert_array_equal(disc_mask(3), plus)
    five = disc_mask(5)  # c = 2: the 3 x 3 block and the four arm tips, not (2, 1)
    assert five.sum() == 13 and five[0, 2] and not five[0, 1] and not five[0, 0]
    np.testing.assert_array_equal(disc_kernel(48), five / 13)


def two_same_convolutions(counts: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The published blur written plainly: each pass sums the kernel over the zero-padded map
    and keeps H x W (the kernel is symmetric, so correlation is convolution)."""
    radius = kernel.shape[0] // 2
    values = counts.astype(np.float64)
    for _ in range(2):
        padded = np.pad(values, radius)
        values = np.zeros_like(values)
        for dy in range(kernel.shape[0]):
            for dx in range(kernel.shape[1]):
                values += (
                    kernel[dy, dx] * padded[dy : dy + counts.shape[0], dx : dx + counts.shape[1]]
                )
    return values


def test_one_point_in_the_corner_of_a_64_x_48_image() -> None:
    """d = 5 (13 pixels). The first pass keeps the 6 disc pixels inside the image,
    S = {(0,0), (0,1), (0,2), (1,0), (1,1), (2,0)}, 1/13 each; the second gives each pixel
    (number of S within distance 2) / 169: 6 at (0,0) and (1,1), 5 at (0,1), 3 at (2,2)."""
    found = human_map([np.array([[0.5, 0.5]])], 64, 48)
    assert found[0, 0] == 1.0 and found[1, 1] == 1.0
    assert found[0, 1] == pytest.approx(5 / 6) and found[1, 0] == pytest.approx(5 / 6)
    assert found[2, 2] == pytest.approx(3 / 6)
    assert not found[5:].any() and not found[:, 5:].any()
    counts = np.zeros((48, 64))
    counts[0, 0] = 1
    expected = two_same_convolutions(counts, disc_mask(5) / 13)
    np.testing.assert_allclose(found, expected / expected.max(), rtol=1e-6, atol=1e-7)
    # one pass of the disc convolved with itself is not the published blur near an edge
    assert expected[0, 0] * 169 == pytest.approx(6) and expected[1, 1] * 169 == pytest.approx(6)


def test_one_point_at_the_centre_of_a_256_x_256_image() -> None:
    """Far from the edges the blur is the disc (d = 21, 317 pixels) convolved with itself:
    (overlap of two discs) / 317^2, peak 317 / 317^2 at the point."""
    found = human_map([np.array([[128.5, 128.5]])], 256, 256)
    assert found[128, 128] == 1.0 and found.sum() == pytest.approx(317, rel=1e-5)
    # discs 20 px apart overlap in one pixel, 21 px apart in none; (14, 14) apart in three:
    # (7, 7), (6, 8) and (8, 6); (15, 15) apart in none
    assert found[128, 148] == pytest.approx(1 / 317) and found[128, 149] == 0
    assert found[108, 128] == pytest.approx(1 / 317) and found[107, 128] == 0
    assert found[142, 142] == pytest.approx(3 / 317) and found[143, 143] == 0
    assert to_eval(found)[112, 112] == 1.0  # the 256 view is the identity, cropped from 16


def test_the_224_view_of_a_500_x_375_map_picks_the_documented_pixels() -> None:
    """Short side 375 -> 256, long side int(256 * 500 / 375) = 341; crop offsets 16 and
    int(round(58.5)) = 58; view pixel i of n_out is native floor((i + 0.5) * n_in / n_out)."""
    rows, cols = map_view_indices(500, 375)
    assert (
        rows[:3].tolist() == [24, 25, 27] and rows[-1] == 350
    )  # 16.5, 17.5, 18.5, 239.5 x 375/256
    assert (
        cols[:3].tolist() == [85, 87, 88] and cols[-1] == 412
    )  # 58.5, 59.5, 60.5, 281.5 x 500/341
    native = np.arange(375)[:, None] * 1000.0 + np.arange(500)[None, :]
    view = to_eval(native)
    expected_rows = np.floor((np.arange(16, 240) + 0.5) * 375 / 256).astype(int)
    expected_cols = np.floor((np.arange(58, 282) + 0.5) * 500 / 341).astype(int)
    np.testing.assert_array_equal(view, native[np.ix_(expected_rows, expected_cols)])


@pytest.mark.parametrize(("width", "height"), [(64, 48), (30, 20), (7, 9), (500, 375)])
@pytest.mark.parametrize("kind", ["disc", "gaussian"])
def test_point_by_point_maps_equal_the_dense_blur(width: int, height: int, kind: str) -> None:
    """The bounded-memory path (point responses, view pixels only) against the plain one."""
    settings = MapSettings(blur=kind)
    rng = np.random.default_rng(width)
    rounds = [rng.uniform(0, (width, height), (12, 2)) for _ in range(4)]
    rounds[0][:2] = [[0.5, 0.5], [width - 0.5, height - 0.5]]  # corners
    rounds.append(np.empty((0, 2)))  # a round without a point inside adds nothing
    counts = sum(points_map(points, width, height).astype(np.float64) for points in rounds)
    if kind == "disc":
        dense = two_same_convolutions(counts, disc_kernel(min(width, height)))
    else:
        sigma = disc_diameter(min(width, height)) / 4
        dense = ndimage.gaussian_filter(counts, sigma, mode="constant", cval=0.0)
    np.testing.assert_allclose(blur(counts, settings), dense, rtol=1e-9, atol=1e-12)
    found = human_map(rounds, width, height, settings)
    np.testing.assert_allclose(found, dense / dense.max(), rtol=1e-6, atol=1e-7)
    assert ((found == 0) == (dense == 0)).all()
    views = round_eval_maps(rounds, width, height, settings)
    np.testing.assert_allclose(views.sum(axis=0), to_eval(dense), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("corner", [(50, 35), (0, 0), (100, 0)])
def test_many_points_blurred_densely_equal_the_two_passes(corner: tuple[int, int]) -> None:
    """Many points in a small window are blurred densely: in one pass with the disc convolved
    with itself when every point is far enough inside (its first pass never cropped), in two
    passes when some lie at the image's edges; either way the two cropped passes."""
    width, height = 120, 90  # d = 7
    rng = np.random.default_rng(corner[0])
    rounds = [corner + rng.uniform(0, 20, (60, 2)) for _ in range(5)]
    counts = sum(points_map(points, width, height).astype(np.float64) for points in rounds)
    dense = two_same_convolutions(counts, disc_kernel(min(width, height)))
    found = human_map(rounds, width, height)
    np.testing.assert_allclose(found, dense / dense.max(), rtol=1e-6, atol=1e-7)
    assert ((found == 0) == (dense == 0)).all()


def test_maps_of_a_12_megapixel_photo_stay_small() -> None:
    """No stack of native-size round maps: 20 rounds of a 4000 x 3000 photo."""
    rng = np.random.default_rng(0)
    rounds = [rng.uniform(0, (4000, 3000), (40, 2)) for _ in range(20)]
    tracemalloc.start()
    try:
        views = round_eval_maps(rounds, 4000, 3000, MapSettings())
        _, views_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        human_map(rounds, 4000, 3000)
        _, map_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert views.shape == (20, 224, 224) and views_peak < 20 * 2**20
    assert map_peak < 4000 * 3000 * (4 + 8) + 10 * 2**20  # the float32 map, a float64 window


def test_points_map_counts_points_per_native_pixel() -> None:
    points = np.array([[0.2, 0.9], [0.7, 0.1], [5.5, 3.0], [63.99, 47.99], [64.0, 1.0], [-0.1, 2]])
    counts = points_map(points, 64, 48)
    assert counts.dtype == np.float32 and counts.shape == (48, 64)
    assert counts[0, 0] == 2 and counts[3, 5] == 1 and counts[47, 63] == 1
    assert counts.sum() == 4  # the two outside the image are dropped


def test_human_map_averages_blurs_and_normalises() -> None:
    settings = MapSettings()
    one = human_map([np.array([[100.5, 100.5]])], 256, 256, settings)
    assert one.dtype == np.float32 and one.shape == (256, 256)
    assert one.max() == 1.0 and one[100, 100] == 1.0
    # twice a 21-px disc: the blur reaches 20 px from the point and no farther
    assert one[100, 120] > 0 and one[100, 121] == 0 and one[100, 80] > 0 and one[100, 79] == 0
    assert one[0, 0] == 0
    # two rounds: where both painted counts twice as much as where one did
    two = human_map([np.array([[50.5, 50.5], [200.5, 200.5]]), np.array([[50.5, 50.5]])], 256, 256)
    assert two[50, 50] == 1.0 and two[200, 200] == pytest.approx(0.5)
    # many points never saturate
    many = human_map([np.full((5000, 2), 10.5)], 256, 256)
    assert many.max() == 1.0 and np.isfinite(many).all()
    assert not human_map([np.empty((0, 2))], 64, 48).any()


def test_gaussian_blur_is_the_alternative() -> None:
    gaussian = human_map([np.array([[100.5, 100.5]])], 256, 256, MapSettings(blur="gaussian"))
    disc = human_map([np.array([[100.5, 100.5]])], 256, 256)
    sigma = disc_diameter(256) / 4
    assert gaussian[100, 100] == 1.0
    assert gaussian[100, 105] == pytest.approx(np.exp(-(5**2) / (2 * sigma**2)), rel=1e-3)
    assert gaussian[100, 105] != pytest.approx(disc[100, 105], abs=0.01)


def test_to_eval_resizes_the_short_side_to_256_and_crops_the_centre_224() -> None:
    native = np.zeros((300, 600), dtype=np.float32)  # scale 256/300: width 512, crop from x 144
    native[:, 300:] = 1.0  # the right half
    crop = to_eval(native)
    assert crop.shape == (224, 224) and crop.dtype == np.float32
    assert crop[:, :100].max() == 0 and crop[:, 120:].min() == pytest.approx(1.0)
    assert crop.max() <= 1.0


@pytest.fixture
def played(database: Database) -> dict:
    """Two images, six players; every rule of validity is broken once on the first image."""
    with database.session() as session:
        image_set = ImageSet(name="set")
        model = DnnModel(name="m", version="1", architecture="a", weights_sha256="0" * 64)
        session.add_all([image_set, model])
        session.flush()
        images = [
            Image(
                image_set_id=image_set.id,
                sha256=str(i),
                file_name=f"{i}.png",
                original_name=f"{i}.png",
                width=64,
                height=48,
                synset="n01440764",
                class_index=i,
            )
            for i in range(2)
        ]
        campaigns = [
            Campaign(
                slug=f"c{i}",
                name=f"c{i}",
                image_set_id=image_set.id,
                model_id=model.id,
                brush_radius=0.06,
                brush_softness=0.5,
                reveal_background="blur",
                background_blur_sigma=12.0,
            )
            for i in range(2)
        ]
        players = [Player(display_name=f"p{i}") for i in range(6)]
        session.add_all(images + campaigns + players)
        session.flush()

        def play(player, image, outcome="correct", n=4, campaign=campaigns[0], version=1):
            round_ = Round(
                player_id=player.id,
                campaign_id=campaign.id,
                campaign_version=version,
                image_id=image.id,
                model_id=model.id,
                model_version="1",
                outcome=outcome,
                n_points=n,
            )
            session.add(round_)
            session.flush()
            points = [(float(player.id % 60) + 0.5, 10.5, 10 * k) for k in range(n)]
            session.add(
                PointBatch(
                    round_id=round_.id, seq=1, n_points=n, data=pack_points(points), received_ms=0
                )
            )
            return round_

        first, second = images
        play(players[4], first, campaign=campaigns[1])  # earlier round in another campaign
        kept = [play(players[0], first), play(players[1], first, "timeout", n=2, version=2)]
        play(players[2], first, "skip")
        play(players[3], first, n=1)  # too few points
        play(players[4], first)  # not the player's first round on this image
        play(players[5], first)  # excluded
        session.add(PlayerExclusion(player_id=players[5].id, reason="bot"))
        play(players[0], second)  # a single valid round: too few for a map
        return {
            "campaign": campaigns[0].id,
            "first": first.id,
            "second": second.id,
            "kept_players": [round_.player_id for round_ in kept],
            "p4": players[4].id,
            "p2": players[2].id,
        }


def test_valid_rounds_follow_the_settings(database: Database, played: dict) -> None:
    with database.session() as session:
        found = list(valid_rounds(session, played["campaign"], MapSettings(min_rounds=2)))
        assert [image.image_id for image in found] == [played["first"]]
        image = found[0]
        assert (image.width, image.height, image.class_index) == (64, 48, 0)
        assert image.player_ids == played["kept_players"]
        assert [points.shape for points in image.rounds_points] == [(4, 2), (2, 2)]
        assert image.rounds_points[0][0].tolist() == [played["kept_players"][0] % 60 + 0.5, 10.5]

        loose = MapSettings(
            outcomes=("correct", "timeout", "skip"),
            first_round_only=False,
            min_points=1,
            min_rounds=1,
        )
        everything = {
            image.image_id: image for image in valid_rounds(session, played["campaign"], loose)
        }
        assert set(everything) == {played["first"], played["second"]}
        assert len(everything[played["first"]].player_ids) == 5  # the excluded player never
        assert {played["p4"], played["p2"]} <= set(everything[played["first"]].player_ids)

        only_v2 = list(valid_rounds(session, played["campaign"], loose, campaign_version=2))
        assert [image.player_ids for image in only_v2] == [played["kept_players"][1:]]
        assert list(valid_rounds(session, played["campaign"], MapSettings(min_rounds=3))) == []
        assert list(valid_rounds(session, played["campaign"], MapSettings())) == []


def test_by_default_a_round_needs_two_points_and_an_image_five_rounds() -> None:
    """The published ``min_clicks`` 1 (rounds of <= 1 point dropped), ``min_subjects`` 5."""
    assert (MapSettings().min_points, MapSettings().min_rounds) == (2, 5)
