"""The maps against simulated players whose points come from a known importance map."""

import numpy as np

from clickme.maps.aggregate import MapSettings, human_map, to_eval
from clickme.maps.reliability import spearman, split_half
from clickme.maps.simulate import careless_count, ground_truth_map, simulate_rounds

WIDTH, HEIGHT = 64, 48
POINTS = 30
SETTINGS = MapSettings()


def agreement(rounds: list[np.ndarray], truth: np.ndarray) -> float:
    """Spearman of the rounds' human map with the truth, in evaluation space."""
    return spearman(to_eval(human_map(rounds, WIDTH, HEIGHT, SETTINGS)), to_eval(truth))


def test_simulated_points_follow_the_truth() -> None:
    rng = np.random.default_rng(1)
    truth = ground_truth_map(rng, WIDTH, HEIGHT)
    assert truth.shape == (HEIGHT, WIDTH) and truth.max() == 1.0 and truth.min() > 0
    rounds = simulate_rounds(rng, truth, 10, POINTS, careless_share=0.3, noise=0.0)
    assert len(rounds) == 10 and careless_count(10, 0.3) == 3
    assert all(points.shape == (POINTS, 2) and points.dtype == np.float32 for points in rounds)
    inside = [(points >= 0).all() and (points < (WIDTH, HEIGHT)).all() for points in rounds]
    assert all(inside)

    def truth_at(points: np.ndarray) -> float:
        return float(truth[points[:, 1].astype(int), points[:, 0].astype(int)].mean())

    assert min(map(truth_at, rounds[:7])) > max(map(truth_at, rounds[7:]))


def test_agreement_rises_with_players_and_passes_0_9() -> None:
    means = []
    for n_players in (5, 10, 20, 40):
        values = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            truth = ground_truth_map(rng, WIDTH, HEIGHT)
            values.append(agreement(simulate_rounds(rng, truth, n_players, POINTS), truth))
        means.append(float(np.mean(values)))
    assert means == sorted(means), means
    assert means[0] < 0.9 < means[-1], means


def test_split_half_predicts_agreement_with_the_truth() -> None:
    """Across images of more or less careful players, the image whose halves agree more is
    the image whose map agrees more with the truth."""
    conditions = [  # (players, noise, careless share)
        (4, 0.25, 0.5),
        (6, 0.15, 0.3),
        (8, 0.1, 0.25),
        (10, 0.06, 0.2),
        (14, 0.04, 0.1),
        (20, 0.02, 0.05),
        (30, 0.01, 0.0),
        (40, 0.01, 0.0),
    ]
    ceilings, truths = [], []
    for seed, (n_players, noise, careless) in enumerate(conditions):
        rng = np.random.default_rng(100 + seed)
        truth = ground_truth_map(rng, WIDTH, HEIGHT)
        rounds = simulate_rounds(rng, truth, n_players, POINTS, careless, noise)
        ceilings.append(split_half(rounds, WIDTH, HEIGHT, SETTINGS, n_splits=20, rng=rng).corrected)
        truths.append(agreement(rounds, truth))
    assert spearman(np.array(ceilings), np.array(truths)) >= 0.85, (ceilings, truths)


def test_leaving_out_careless_players_improves_agreement() -> None:
    for seed in range(3):
        rng = np.random.default_rng(200 + seed)
        truth = ground_truth_map(rng, WIDTH, HEIGHT)
        rounds = simulate_rounds(rng, truth, 20, POINTS, careless_share=0.4)
        careful = rounds[: 20 - careless_count(20, 0.4)]
        assert agreement(careful, truth) > agreement(rounds, truth) + 0.05
