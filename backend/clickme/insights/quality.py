"""Player quality: measures from a player's rounds and painted points, and the automatic flags.

Measures are computed image by image, so only one image's masks are in memory at a time. A
player's map of an image is the mean of their rounds' masks on it (pooled to 56 x 56); the
consensus is the mean of the other players' maps (excluded players left out). A catch trial
(an image marked ``is_catch``, one the DNN should get) is passed when the round was won.
"""

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.game.models import Round
from clickme.game.outcomes import COUNTED, Outcome
from clickme.game.points import xy_of
from clickme.game.service import display_ms
from clickme.images.models import Image
from clickme.maps.service import RoundMasks
from clickme.players.schemas import PlayerMeasures
from clickme.players.service import excluded_player_ids
from clickme.scoring.reveal import PreparedImageCache, revealed_fraction

CONSENSUS_SIZE = 56
# Finished rounds that count (repeats measure nothing of the player's first look).
_FINISHED = Round.outcome.is_not(None) & COUNTED


@dataclass(frozen=True)
class FlagRules:
    """When a player gets flagged; the defaults are the issue's."""

    max_mean_revealed: float = 0.8
    min_interval_cv: float = 0.05
    min_intervals: int = 50
    max_speed_px_s: float = 20000.0
    max_consensus_distance: float = 0.8
    min_consensus_images: int = 5
    min_catch_accuracy: float = 0.5
    min_catch_rounds: int = 4
    # no_effort: more than this share of the finished rounds (at least min_effort_rounds) empty
    # or skipped within quick_skip_ms.
    max_no_effort_share: float = 0.5
    min_effort_rounds: int = 3
    quick_skip_ms: int = 1000


# The flags ``flags_for`` computes (refreshing never touches other kinds, staff's or the
# completion's).
AUTOMATIC_FLAGS = (
    "paints_everything",
    "bot_timing",
    "fails_catch_trials",
    "far_from_consensus",
    "no_effort",
)


@dataclass
class _Tally:
    rounds: int = 0
    wins: int = 0
    catch_rounds: int = 0
    catch_wins: int = 0
    no_effort: int = 0
    revealed: list[float] = field(default_factory=list)
    path_px: float = 0.0
    span_ms: int = 0
    first_ms: list[int] = field(default_factory=list)
    display_ms: list[int] = field(default_factory=list)
    intervals: list[np.ndarray] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)

    def add_painted_round(self, points: np.ndarray, revealed: float) -> None:
        times = points["t"].astype(np.int64)
        self.revealed.append(revealed)
        self.first_ms.append(int(times[0]))
        if len(points) >= 2:
            steps = np.diff(xy_of(points).astype(np.float64), axis=0)
            self.path_px += float(np.hypot(steps[:, 0], steps[:, 1]).sum())
            self.span_ms += max(int(times[-1] - times[0]), 1)  # same-ms points: 1 ms at most
            self.intervals.append(np.diff(times))

    def measures(self) -> PlayerMeasures:
        intervals = np.concatenate(self.intervals) if self.intervals else np.empty(0)
        return PlayerMeasures(
            rounds=self.rounds,
            success_rate=self.wins / self.rounds if self.rounds else None,
            mean_revealed=float(np.mean(self.revealed)) if self.revealed else None,
            speed_px_s=1000 * self.path_px / self.span_ms if self.span_ms else None,
            first_point_ms=float(np.median(self.first_ms)) if self.first_ms else None,
            display_ms=float(np.median(self.display_ms)) if self.display_ms else None,
            intervals=len(intervals),
            interval_cv=_variation(intervals),
            consensus_distance=float(np.mean(self.distances)) if self.distances else None,
            consensus_images=len(self.distances),
            catch_rounds=self.catch_rounds,
            catch_accuracy=self.catch_wins / self.catch_rounds if self.catch_rounds else None,
            no_effort_rounds=self.no_effort,
        )


def _variation(intervals: np.ndarray) -> float | None:
    """Coefficient of variation; 0 when every interval is 0 (perfectly regular)."""
    if len(intervals) == 0:
        return None
    mean = float(intervals.mean())
    return float(intervals.std()) / mean if mean > 0 else 0.0


def consensus_distance(mine: np.ndarray, consensus: np.ndarray) -> float | None:
    """1 - Pearson correlation of two maps; None when either is flat (no correlation defined)."""
    a, b = mine.astype(np.float64).ravel(), consensus.astype(np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return None
    return 1.0 - float(np.corrcoef(a, b)[0, 1])


def pooled(mask: np.ndarray) -> np.ndarray:
    """A 224 x 224 mask averaged down to 56 x 56."""
    block = mask.shape[0] // CONSENSUS_SIZE
    return mask.reshape(CONSENSUS_SIZE, block, CONSENSUS_SIZE, block).mean(axis=(1, 3))


class _ImageMeasurer:
    """Renders every painted round of one image at a time and tallies the measured players."""

    def __init__(
        self, session: Session, images: PreparedImageCache, images_dir: Path, excluded: set[int]
    ) -> None:
        self.session = session
        self.masks = RoundMasks(session, images, images_dir)
        self.excluded = excluded

    def tally(self, image_id: int, tallies: dict[int, _Tally]) -> None:
        image = self.session.get_one(Image, image_id)
        rounds = [
            round_
            for round_ in self.session.scalars(
                select(Round).where(Round.image_id == image_id, _FINISHED, Round.n_points > 0)
            )
            if round_.player_id in tallies or round_.player_id not in self.excluded
        ]
        maps: dict[int, list[np.ndarray]] = defaultdict(list)
        for round_, points, mask in self.masks.of_image(image, rounds):
            maps[round_.player_id].append(pooled(mask))
            if round_.player_id in tallies:
                tallies[round_.player_id].add_painted_round(points, revealed_fraction(mask))
        self._tally_consensus({p: np.mean(m, axis=0) for p, m in maps.items()}, tallies)

    def _tally_consensus(self, maps: dict[int, np.ndarray], tallies: dict[int, _Tally]) -> None:
        voters = [p for p in maps if p not in self.excluded]
        total = np.sum([maps[p] for p in voters], axis=0) if voters else None
        for player_id in maps.keys() & tallies.keys():
            others = len(voters) - (player_id in voters)
            if total is None or others == 0:
                continue
            own = maps[player_id] if player_id in voters else 0
            distance = consensus_distance(maps[player_id], (total - own) / others)
            if distance is not None:
                tallies[player_id].distances.append(distance)


def _no_effort(row, rules: FlagRules) -> bool:
    """An empty round, or one skipped within ``rules.quick_skip_ms`` of its photo showing."""
    if row.n_points == 0:
        return True
    if row.ended_at is None:
        return False
    quick_ms = (row.ended_at - (row.shown_at or row.started_at)).total_seconds() * 1000
    return row.outcome == Outcome.SKIP and quick_ms < rules.quick_skip_ms


def measure_players(
    session: Session,
    images: PreparedImageCache,
    images_dir: Path,
    player_ids: Collection[int],
    rules: FlagRules = FlagRules(),
) -> dict[int, PlayerMeasures]:
    """Every measure of each player, from their finished rounds."""
    tallies = {player_id: _Tally() for player_id in player_ids}
    if not tallies:
        return {}
    rows = session.execute(
        select(
            Round.player_id,
            Round.image_id,
            Round.outcome,
            Round.n_points,
            Round.started_at,
            Round.shown_at,
            Round.ended_at,
            Image.is_catch,
        )
        .join(Image, Image.id == Round.image_id)
        .where(Round.player_id.in_(tallies), _FINISHED)
    ).all()
    for row in rows:
        tally, won = tallies[row.player_id], row.outcome == Outcome.CORRECT
        tally.rounds += 1
        tally.wins += won
        tally.catch_rounds += row.is_catch
        tally.catch_wins += row.is_catch and won
        if row.shown_at is not None:
            tally.display_ms.append(display_ms(row.started_at, row.shown_at))
        tally.no_effort += _no_effort(row, rules)
    measurer = _ImageMeasurer(session, images, images_dir, excluded_player_ids(session))
    for image_id in sorted({row.image_id for row in rows if row.n_points}):
        measurer.tally(image_id, tallies)
    return {player_id: tally.measures() for player_id, tally in tallies.items()}


def flags_for(measures: PlayerMeasures, rules: FlagRules = FlagRules()) -> dict[str, str]:
    """The flags the measures raise: kind -> reason."""
    flags: dict[str, str] = {}
    if measures.mean_revealed is not None and measures.mean_revealed > rules.max_mean_revealed:
        flags["paints_everything"] = (
            f"paints {measures.mean_revealed:.0%} of the image on average "
            f"(over {rules.max_mean_revealed:.0%})"
        )
    timing = []
    cv = measures.interval_cv
    if cv is not None and measures.intervals >= rules.min_intervals and cv < rules.min_interval_cv:
        timing.append(
            f"point intervals too regular (variation {cv:.3f} over {measures.intervals} "
            f"intervals, under {rules.min_interval_cv})"
        )
    if measures.speed_px_s is not None and measures.speed_px_s > rules.max_speed_px_s:
        timing.append(
            f"paints impossibly fast ({measures.speed_px_s:,.0f} px/s, "
            f"over {rules.max_speed_px_s:,.0f})"
        )
    if timing:
        flags["bot_timing"] = "; ".join(timing)
    catch = measures.catch_accuracy
    if (
        catch is not None
        and measures.catch_rounds >= rules.min_catch_rounds
        and catch < rules.min_catch_accuracy
    ):
        flags["fails_catch_trials"] = (
            f"the DNN got only {catch:.0%} of {measures.catch_rounds} catch trials "
            f"(under {rules.min_catch_accuracy:.0%})"
        )
    if (
        measures.rounds >= rules.min_effort_rounds
        and measures.no_effort_rounds > rules.max_no_effort_share * measures.rounds
    ):
        flags["no_effort"] = (
            f"{measures.no_effort_rounds} of {measures.rounds} rounds empty or skipped within "
            f"{rules.quick_skip_ms / 1000:g} s (over {rules.max_no_effort_share:.0%})"
        )
    distance = measures.consensus_distance
    if (
        distance is not None
        and measures.consensus_images >= rules.min_consensus_images
        and distance > rules.max_consensus_distance
    ):
        flags["far_from_consensus"] = (
            f"maps far from the other players' (1 - r = {distance:.2f} over "
            f"{measures.consensus_images} images, over {rules.max_consensus_distance})"
        )
    return flags
