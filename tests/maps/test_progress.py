"""The reliability curve and the Spearman-Brown estimate of the plays a target needs."""

import math

import numpy as np
import pytest

from clickme.maps.aggregate import MapSettings
from clickme.maps.progress import (
    capped,
    curve_players,
    players_needed,
    plays_estimate,
    reliability_curve,
    single_player_reliability,
    whole,
)
from clickme.maps.reliability import split_half
from clickme.maps.simulate import ground_truth_map, simulate_rounds
from clickme.maps.valid import ImageRounds

WIDTH, HEIGHT = 64, 48
SETTINGS = MapSettings()


def simulated_image(
    seed: int, n_players: int, points: int = 30, noise: float = 0.02
) -> ImageRounds:
    rng = np.random.default_rng(seed)
    truth = ground_truth_map(rng, WIDTH, HEIGHT)
    rounds = simulate_rounds(rng, truth, n_players, points, noise=noise)
    return ImageRounds(seed, WIDTH, HEIGHT, 0, list(range(n_players)), rounds)


def test_curve_players_are_spread_and_bounded() -> None:
    assert curve_players(1) == []
    assert curve_players(2) == [2]
    assert curve_players(10) == list(range(2, 11))
    many = curve_players(200)
    assert len(many) == 20 and many[0] == 2 and many[-1] == 200 and many == sorted(set(many))


def test_the_curve_rises_with_players() -> None:
    images = [simulated_image(seed, 12 - seed % 3, points=10, noise=0.08) for seed in range(6)]
    curve = reliability_curve(images, SETTINGS, 4, np.random.default_rng(0))
    assert [point.players for point in curve] == list(range(2, 13))
    assert [point.images for point in curve[:9]] == [6] * 9  # every image has 10 players or more
    assert [point.images for point in curve[9:]] == [4, 2]  # fewer images have 11 and 12
    values = [point.reliability for point in curve]
    assert values[0] < values[4] < values[-1] < 1
    assert values[-1] - values[0] > 0.1


def test_the_curve_at_all_players_is_the_split_half() -> None:
    image = simulated_image(7, 8)
    rng = np.random.default_rng(1)
    curve = reliability_curve([image], SETTINGS, 30, rng)
    full = split_half(image.rounds_points, WIDTH, HEIGHT, SETTINGS, 30, np.random.default_rng(2))
    assert full is not None
    assert curve[-1].players == 8 and curve[-1].reliability == pytest.approx(
        full.corrected, abs=0.02
    )


def test_spearman_brown_against_hand_computed_values() -> None:
    # r = 0.6 on 4 players: r1 = 0.6 / (4 - 3 * 0.6) = 0.6 / 2.2; for T = 0.8,
    # n* = 0.8 * (1 - r1) / (r1 * 0.2) = 0.8 * 1.6 / 2.2 / (0.6 / 2.2 * 0.2) = 10.666...
    assert single_player_reliability(0.6, 4) == pytest.approx(0.6 / 2.2)
    assert players_needed(0.6, 4, 0.8) == pytest.approx(32 / 3)
    # r = 0.5 on 1 player: n* for 0.75 is 3 (3 * 0.5 / (1 + 2 * 0.5) = 0.75)
    assert players_needed(0.5, 1, 0.75) == pytest.approx(3.0)
    # prophecy and forward Spearman-Brown agree
    r1 = single_player_reliability(0.7, 6)
    assert 6 * r1 / (1 + 5 * r1) == pytest.approx(0.7)
    assert players_needed(1.0, 5, 0.9) == 0.0
    assert math.isinf(players_needed(0.0, 5, 0.9)) and math.isinf(players_needed(-0.1, 5, 0.9))
    assert math.isinf(players_needed(0.9, 5, 1.0))
    assert whole(3.0000000001) == 3 and whole(3.01) == 4 and math.isinf(whole(math.inf))


def test_the_estimate_is_the_median_over_images() -> None:
    # for 0.8: 0.6 on 4 players needs 11 (7 more); 0.5 on 1 needs 4 (3 more); 0.9 on 12 players:
    # r1 = 0.9 / 2.1, n* = 0.8 * (1.2 / 2.1) / (0.9 / 2.1 * 0.2) = 5.33, so 6 (none more)
    estimate = plays_estimate([(0.6, 4, 4), (0.5, 1, 1), (0.9, 12, 12)], 0.8)
    assert estimate is not None
    assert estimate.images == 3 and estimate.images_at_target == 1
    assert estimate.players_needed == 6 and estimate.more_plays == 3
    assert plays_estimate([], 0.8) is None


def test_a_reached_target_needs_no_more_plays() -> None:
    images = [simulated_image(seed, 10) for seed in range(3)]
    rng = np.random.default_rng(0)
    measured = []
    for image in images:
        found = split_half(image.rounds_points, WIDTH, HEIGHT, SETTINGS, 20, rng)
        assert found is not None and found.corrected > 0.8
        measured.append((found.corrected, 10, 10))
    estimate = plays_estimate(measured, 0.8)
    assert estimate is not None
    assert estimate.more_plays == 0 and estimate.images_at_target == 3
    assert estimate.players_needed <= 10
    # measured on a capped subset: what is left counts from all of the image's players
    assert plays_estimate([(0.6, 4, 20)], 0.8).more_plays == 0  # type: ignore[union-attr]
    assert plays_estimate([(0.6, 4, 8)], 0.8).more_plays == 3  # type: ignore[union-attr]
    unreachable = plays_estimate([(0.0, 4, 4)], 0.8)
    assert unreachable is not None and math.isinf(unreachable.more_plays)


def test_capped_keeps_a_random_subset_in_order() -> None:
    image = simulated_image(3, 12)
    assert capped(image, 12, np.random.default_rng(0)) is image
    few = capped(image, 5, np.random.default_rng(0))
    assert len(few.rounds_points) == 5 and few.player_ids == sorted(few.player_ids)
    for player, points in zip(few.player_ids, few.rounds_points, strict=True):
        assert points is image.rounds_points[image.player_ids.index(player)]
