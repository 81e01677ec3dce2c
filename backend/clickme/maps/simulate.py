"""Simulated players for tests and benchmarks: points drawn from a known importance map.

The truth is a sum of Gaussian blobs at random places. A careful player's points are pixels
drawn with probability proportional to the truth, moved by Gaussian noise; a careless player's
points are uniform over the image. The careless players come last in the rounds.
"""

import numpy as np

BLOBS = 3
BLOB_SIGMA = (0.06, 0.15)  # blob sigma range, as shares of the short side


def ground_truth_map(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """float64 (height, width) in [0, 1]: a sum of Gaussian blobs at random places, peak 1."""
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    short = min(width, height)
    truth = np.zeros((height, width))
    for _ in range(BLOBS):
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
        sigma = rng.uniform(*BLOB_SIGMA) * short
        weight = rng.uniform(0.5, 1.0)
        truth += weight * np.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / (2 * sigma**2))
    return truth / truth.max()


def careless_count(n_players: int, careless_share: float) -> int:
    """How many of the players are careless (the last ones)."""
    return round(careless_share * n_players)


def simulate_rounds(
    rng: np.random.Generator,
    truth: np.ndarray,
    n_players: int,
    points_per_round: int,
    careless_share: float = 0.0,
    noise: float = 0.02,
) -> list[np.ndarray]:
    """One round per player, each (points_per_round, 2) float32 native (x, y) inside the image.

    noise: the standard deviation of each point's displacement, as a share of the short side.
    The last ``careless_count(n_players, careless_share)`` players paint uniformly at random.
    """
    height, width = truth.shape
    probabilities = (truth / truth.sum()).ravel()
    n_careless = careless_count(n_players, careless_share)
    rounds = []
    for player in range(n_players):
        if player >= n_players - n_careless:
            xy = rng.uniform((0, 0), (width, height), (points_per_round, 2))
        else:
            pixels = rng.choice(probabilities.size, size=points_per_round, p=probabilities)
            xy = np.stack([pixels % width, pixels // width], axis=1) + rng.random(
                (points_per_round, 2)
            )
            xy += rng.normal(0.0, noise * min(width, height), xy.shape)
        upper = np.array([width, height]) - 1e-3
        rounds.append(np.clip(xy, 0.0, upper).astype(np.float32))
    return rounds
