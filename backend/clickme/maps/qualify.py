"""Which images get a human map, and why the others do not: the rules in the order they apply.

1. ``too_few_rounds``: fewer valid rounds than ``MapSettings.min_rounds``.
2. ``empty_view``: the map's 224 x 224 evaluation view holds no painted pixel (every point fell
   outside the centre crop, beyond the blur's reach): not a training or alignment target.
3. ``low_reliability``: only when a minimum split-half reliability is asked for: the image's
   corrected split-half value is below it (or cannot be measured).

An image that fails a rule is counted under that rule only (the first it fails).
"""

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from clickme.maps.aggregate import MapSettings


class NoMap(StrEnum):
    """Why an image has no map."""

    TOO_FEW_ROUNDS = "too_few_rounds"
    EMPTY_VIEW = "empty_view"
    LOW_RELIABILITY = "low_reliability"


def rounds_reason(n_valid_rounds: int, settings: MapSettings) -> NoMap | None:
    return NoMap.TOO_FEW_ROUNDS if n_valid_rounds < max(1, settings.min_rounds) else None


def view_is_painted(map_eval: np.ndarray) -> bool:
    """Whether a map's evaluation view holds a painted (non-zero) pixel."""
    return bool(np.max(map_eval, initial=0.0) > 0)


def view_reason(map_eval: np.ndarray) -> NoMap | None:
    return None if view_is_painted(map_eval) else NoMap.EMPTY_VIEW


def reliability_reason(split_half: float, min_reliability: float | None) -> NoMap | None:
    """``low_reliability`` below the minimum (NaN, not measurable, is below any minimum)."""
    if min_reliability is None or split_half >= min_reliability:
        return None
    return NoMap.LOW_RELIABILITY


def explain(reason: NoMap, settings: MapSettings, min_reliability: float | None = None) -> str:
    """The rule an image failed, in words ("fewer than 5 valid rounds")."""
    if reason is NoMap.TOO_FEW_ROUNDS:
        rounds = max(1, settings.min_rounds)
        return f"fewer than {rounds} valid round{'s' if rounds != 1 else ''}"
    if reason is NoMap.EMPTY_VIEW:
        return "no painted pixel in the 224 x 224 evaluation view"
    return f"a split-half reliability below {min_reliability:g} (or none: under 2 players)"


def rules_text(settings: MapSettings) -> str:
    """What makes a round valid and an image mapped, in words."""
    points = settings.min_points
    first = ", the player's first round on the image" if settings.first_round_only else ""
    return (
        f"a valid round ends {' or '.join(settings.outcomes)}, has at least {points} "
        f"point{'s' if points != 1 else ''}{first}; a map needs "
        f"{max(1, settings.min_rounds)} valid rounds"
    )


@dataclass
class MapTally:
    """How many images (and their valid rounds) have a map, and how many fail each rule."""

    settings: MapSettings
    min_reliability: float | None = None
    images_with_map: int = 0
    map_rounds: int = 0
    without_map: Counter[NoMap] = field(default_factory=Counter)

    def add(self, reason: NoMap | None, valid_rounds: int) -> None:
        if reason is None:
            self.images_with_map += 1
            self.map_rounds += valid_rounds
        else:
            self.without_map[reason] += 1

    def reasons(self) -> dict[str, dict[str, int | str]]:
        """Each failed rule (in rule order) with its image count and its words."""
        return {
            reason.value: {
                "images": self.without_map[reason],
                "rule": explain(reason, self.settings, self.min_reliability),
            }
            for reason in NoMap
            if self.without_map[reason]
        }

    def lines(self) -> list[str]:
        """One line per failed rule: "312 images have fewer than 5 valid rounds"."""
        return [
            f"{count} image{' has' if count == 1 else 's have'} "
            f"{explain(reason, self.settings, self.min_reliability)}"
            for reason in NoMap
            if (count := self.without_map[reason])
        ]
