"""Split-half ceiling and floor, campaign reliability and hold-one-out."""

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from clickme.maps.aggregate import (
    MapSettings,
    human_map,
    response_scale,
    round_eval_counts,
    round_eval_maps,
    to_eval,
)
from clickme.maps.reliability import (
    HalfSums,
    average_ranks,
    campaign_reliability,
    hold_one_out,
    spearman,
    split_half,
    split_half_floor,
)
from clickme.maps.simulate import ground_truth_map, simulate_rounds
from clickme.maps.valid import ImageRounds

WIDTH, HEIGHT = 64, 48
SETTINGS = MapSettings()


def simulated_image(seed: int, n_players: int = 12, careless: float = 0.0) -> ImageRounds:
    rng = np.random.default_rng(seed)
    truth = ground_truth_map(rng, WIDTH, HEIGHT)
    rounds = simulate_rounds(rng, truth, n_players, 30, careless_share=careless)
    return ImageRounds(seed, WIDTH, HEIGHT, 0, list(range(100, 100 + n_players)), rounds)


def test_spearman_ranks_with_ties_averaged() -> None:
    rng = np.random.default_rng(0)
    a = np.round(rng.random((224, 224)), 1)  # many ties
    b = a + rng.normal(0, 0.2, a.shape)
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0])
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.zeros((4, 4)), a[:4, :4]))


def test_average_ranks_are_scipy_s_with_ties_zeros_and_negatives() -> None:
    rng = np.random.default_rng(4)
    for size in (1, 2, 7, 1000, 224 * 224):
        values = np.round(rng.normal(size=size), 1)  # many ties, some of them at 0
        values[rng.random(size) < 0.5] = 0.0
        values[rng.random(size) < 0.1] = -0.0
        np.testing.assert_array_equal(average_ranks(values), rankdata(values))
    sparse = np.zeros(224 * 224)
    sparse[rng.integers(0, sparse.size, 500)] = rng.random(500)
    np.testing.assert_array_equal(average_ranks(sparse), rankdata(sparse))
    np.testing.assert_array_equal(average_ranks(np.zeros(9)), np.full(9, 5.0))


def test_spearman_of_mostly_zero_maps_counts_every_pixel() -> None:
    """Only pixels non-zero in either map are ranked; the zeros of both still count."""
    rng = np.random.default_rng(8)
    for painted in (0.001, 0.05, 0.5):
        a, b = np.zeros((224, 224)), np.zeros((224, 224))
        a[rng.random(a.shape) < painted] = 3.0
        b[rng.random(b.shape) < painted] = 1.0
        b[rng.random(b.shape) < painted / 2] = -0.5
        a += np.where(b > 0, rng.integers(0, 50, a.shape), 0)  # whole numbers: exact ties
        assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    one_pixel = np.zeros((4, 4))
    one_pixel[0, 0] = 1.0
    assert spearman(one_pixel, one_pixel) == pytest.approx(1.0)


def test_half_sums_correlate_as_the_sums_of_the_maps_do() -> None:
    image = simulated_image(3, 9, careless=0.2)
    counts = round_eval_counts(image.rounds_points, WIDTH, HEIGHT, SETTINGS)
    np.testing.assert_array_equal(counts, np.round(counts))  # the disc's: whole numbers
    scale = response_scale(SETTINGS.blur, min(WIDTH, HEIGHT))
    np.testing.assert_allclose(
        counts * scale, round_eval_maps(image.rounds_points, WIDTH, HEIGHT, SETTINGS), rtol=1e-15
    )
    halves = HalfSums(counts)
    rng = np.random.default_rng(0)
    orders = [rng.permutation(9) for _ in range(6)]
    firsts, seconds = [order[:4] for order in orders], [order[4:] for order in orders]
    rests = [order[4:7] for order in orders]
    expected = [spearman(counts[a].sum(axis=0), counts[b].sum(axis=0))
                for a, b in zip(firsts, seconds, strict=True)]  # fmt: skip
    assert halves.spearmans(firsts) == pytest.approx(expected, abs=1e-12)
    assert halves.spearmans(firsts, seconds) == pytest.approx(expected, abs=1e-12)
    expected_rests = [spearman(counts[a].sum(axis=0), counts[b].sum(axis=0))
                      for a, b in zip(firsts, rests, strict=True)]  # fmt: skip
    assert halves.spearmans(firsts, rests) == pytest.approx(expected_rests, abs=1e-12)


def equal_to_round_off(values: np.ndarray) -> np.ndarray:
    """The values to 12 significant digits: maps are sums of exact fractions, so values that
    differ only by the order of their sums are equal (``average_ranks`` ties them too)."""
    scale = np.abs(values).max()
    return np.round(values / scale, 12) if scale > 0 else values


def reference_spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a = rankdata(equal_to_round_off(np.ravel(a)))
    ranks_b = rankdata(equal_to_round_off(np.ravel(b)))
    if ranks_a.std() == 0 or ranks_b.std() == 0:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def reference_split_values(image: ImageRounds, n_splits: int, rng) -> list[float]:
    """The per-split correlations, made the plain way (scipy ranks, one split at a time)."""
    maps = round_eval_maps(image.rounds_points, WIDTH, HEIGHT, SETTINGS)
    values = []
    for _ in range(n_splits):
        order = rng.permutation(len(maps))
        first, second = order[: len(maps) // 2], order[len(maps) // 2 :]
        values.append(reference_spearman(maps[first].sum(axis=0), maps[second].sum(axis=0)))
    return values


def test_split_half_and_hold_one_out_match_a_plain_reference() -> None:
    for seed, n_players in ((5, 2), (6, 7), (7, 10)):
        image = simulated_image(seed, n_players, careless=0.2)
        rng, same_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        found = split_half(image.rounds_points, WIDTH, HEIGHT, SETTINGS, 20, rng)
        expected = np.mean(reference_split_values(image, 20, same_rng))
        assert found is not None
        assert found.raw == pytest.approx(expected, abs=1e-9)
        assert found.corrected == pytest.approx(2 * expected / (1 + expected), abs=1e-9)
        maps = round_eval_maps(image.rounds_points, WIDTH, HEIGHT, SETTINGS)
        held_out = hold_one_out(image.rounds_points, image.player_ids, WIDTH, HEIGHT, SETTINGS)
        for index, value in enumerate(held_out.values()):
            rest = maps.sum(axis=0) - maps[index]
            assert value == pytest.approx(reference_spearman(maps[index], rest), abs=1e-9)


def test_half_maps_rank_pixels_as_human_map_does() -> None:
    image = simulated_image(1, 6)
    maps = round_eval_maps(image.rounds_points, WIDTH, HEIGHT, SETTINGS)
    assert maps.shape == (6, 224, 224)
    half = to_eval(human_map(image.rounds_points[:3], WIDTH, HEIGHT, SETTINGS))
    assert spearman(maps[:3].sum(axis=0), half) > 0.9999


def test_split_half_is_corrected_with_an_interval() -> None:
    image = simulated_image(2)
    result = split_half(image.rounds_points, WIDTH, HEIGHT, SETTINGS, 30, np.random.default_rng(0))
    assert result is not None and result.n_splits == 30
    assert 0 < result.raw < result.corrected < 1
    assert result.corrected == pytest.approx(2 * result.raw / (1 + result.raw))
    assert result.ci_low <= result.corrected <= result.ci_high
    again = split_half(image.rounds_points, WIDTH, HEIGHT, SETTINGS, 30, np.random.default_rng(0))
    assert again == result
    assert split_half(image.rounds_points[:1], WIDTH, HEIGHT, SETTINGS) is None


def test_floor_is_far_below_the_ceiling() -> None:
    images = [simulated_image(seed) for seed in range(5)]
    rng = np.random.default_rng(0)
    floor = split_half_floor(images, SETTINGS, 30, rng)
    report = campaign_reliability(images, SETTINGS, 20, rng)
    ceiling = report["ceiling"]
    assert floor is not None and ceiling is not None
    assert floor.corrected < 0.5 < 0.8 < ceiling.corrected
    assert report["n_images"] == 5 and set(report["per_image"]) == set(range(5))
    per_image = [value.corrected for value in report["per_image"].values()]
    assert ceiling.corrected == pytest.approx(np.mean(per_image))
    assert ceiling.ci_low <= ceiling.corrected <= ceiling.ci_high
    assert report["floor"] is not None and report["floor"].corrected < 0.5
    assert split_half_floor(images[:1], SETTINGS, 10, rng) is None


def test_hold_one_out_singles_out_careless_players() -> None:
    image = simulated_image(3, 10, careless=0.3)
    scores = hold_one_out(image.rounds_points, image.player_ids, WIDTH, HEIGHT, SETTINGS)
    assert list(scores) == image.player_ids
    careful, careless = list(scores.values())[:7], list(scores.values())[7:]
    assert min(careful) > max(careless)
    assert (
        hold_one_out(image.rounds_points[:1], image.player_ids[:1], WIDTH, HEIGHT, SETTINGS) == {}
    )
