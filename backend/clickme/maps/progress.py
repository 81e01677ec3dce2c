"""How human maps firm up with plays: the reliability curve and the players a target needs.

The curve gives, for k players, the mean over images of the corrected split-half of maps made
from k of each image's players chosen at random (an image with fewer than k players is left out
at k). The estimate is the Spearman-Brown prophecy: a map of n players with reliability r has a
single-player reliability r1 = r / (n - (n - 1) r), and n* = T (1 - r1) / (r1 (1 - T)) players
give it the target reliability T.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from clickme.maps.aggregate import MapSettings, round_eval_counts
from clickme.maps.reliability import HalfSums, spearman_brown
from clickme.maps.valid import ImageRounds

# The most player counts the curve is measured at.
CURVE_POINTS = 20
# An image's map is measured on at most this many of its players (a seeded random choice): the
# per-round evaluation maps of all of them are held in memory at once.
MAX_PLAYERS_MEASURED = 50
# Float round-off allowed before rounding a needed number of players up.
ROUND_OFF = 1e-9


@dataclass(frozen=True)
class CurvePoint:
    """The mean corrected split-half of ``images`` images' maps made of ``players`` players."""

    players: int
    reliability: float
    images: int


@dataclass(frozen=True)
class PlaysEstimate:
    """Medians over the measured images of the players a map needs for the target (rounded up)
    and of the plays that leaves to collect (0 once reached); ``math.inf`` when unreachable."""

    target: float
    players_needed: float
    more_plays: float
    images: int
    images_at_target: int


def capped(image: ImageRounds, limit: int, rng: np.random.Generator) -> ImageRounds:
    """The image with at most ``limit`` of its rounds, chosen at random (order kept)."""
    if len(image.rounds_points) <= limit:
        return image
    chosen = np.sort(rng.choice(len(image.rounds_points), size=limit, replace=False))
    return replace(
        image,
        player_ids=[image.player_ids[index] for index in chosen],
        rounds_points=[image.rounds_points[index] for index in chosen],
    )


def curve_players(max_players: int, points: int = CURVE_POINTS) -> list[int]:
    """The player counts of the curve: 2 to ``max_players``, at most ``points`` evenly spread."""
    if max_players < 2:
        return []
    spread = np.linspace(2, max_players, min(points, max_players - 1))
    return sorted({int(value) for value in np.round(spread)})


def _subset_split_half(
    maps: HalfSums, players: int, n_splits: int, rng: np.random.Generator
) -> float | None:
    """The corrected mean split-half of maps of ``players`` rounds chosen at random each split."""
    chosen = [rng.permutation(len(maps))[:players] for _ in range(n_splits)]
    values = maps.spearmans(
        [rounds[: players // 2] for rounds in chosen], [rounds[players // 2 :] for rounds in chosen]
    )
    finite = [value for value in values if np.isfinite(value)]
    return spearman_brown(float(np.mean(finite))) if finite else None


def reliability_curve(
    images: Sequence[ImageRounds],
    settings: MapSettings,
    n_splits: int,
    rng: np.random.Generator,
) -> list[CurvePoint]:
    """The curve over the images, each image's maps made once and ``n_splits`` random subsets
    taken per player count."""
    counts = curve_players(max((len(image.rounds_points) for image in images), default=0))
    values: dict[int, list[float]] = {players: [] for players in counts}
    for image in images:
        maps = HalfSums(round_eval_counts(image.rounds_points, image.width, image.height, settings))
        for players in counts:
            if players > len(maps):
                break
            value = _subset_split_half(maps, players, n_splits, rng)
            if value is not None:
                values[players].append(value)
    return [
        CurvePoint(players, float(np.mean(found)), len(found))
        for players, found in values.items()
        if found
    ]


def single_player_reliability(reliability: float, players: int) -> float:
    """The reliability of one player's map, from that of a map of ``players`` players."""
    return reliability / (players - (players - 1) * reliability)


def players_needed(reliability: float, players: int, target: float) -> float:
    """Players a map needs for the target (fractional), from its reliability on ``players``
    players; ``math.inf`` when no number of players reaches it."""
    single = single_player_reliability(reliability, players)
    if single >= 1:
        return 0.0
    if single <= 0 or target >= 1:
        return math.inf
    return max(0.0, target * (1 - single) / (single * (1 - target)))


def whole(players: float) -> float:
    """Rounded up to whole players (float round-off forgiven); ``math.inf`` stays."""
    return players if math.isinf(players) else float(math.ceil(players - ROUND_OFF))


def plays_estimate(
    measured: Sequence[tuple[float, int, int]], target: float
) -> PlaysEstimate | None:
    """From each image's (reliability, players it was measured on, players it has); None
    without any image."""
    if not measured:
        return None
    needed = np.array([whole(players_needed(r, n, target)) for r, n, _ in measured])
    have = np.array([players for _, _, players in measured])
    return PlaysEstimate(
        target=target,
        players_needed=whole(float(np.median(needed))),
        more_plays=whole(float(np.median(np.maximum(0.0, needed - have)))),
        images=len(measured),
        images_at_target=sum(r >= target for r, _, _ in measured),
    )
