"""How a round ends, which rounds keep their image's play, and which rounds are still in flight."""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, bindparam

from clickme.game.models import Round


class Outcome(StrEnum):
    """A round's outcome (NULL while it runs)."""

    CORRECT = "correct"  # the DNN got it in time
    TIMEOUT = "timeout"  # the time ran out
    SKIP = "skip"  # the player skipped the image
    # The server ended it without a result: the player started another round in the campaign.
    ABANDONED = "abandoned"


# Rounds played to their end: the ones that can count for maps, scores and progress.
PLAYED_OUTCOMES: tuple[str, ...] = (Outcome.CORRECT.value, Outcome.TIMEOUT.value)

# The one rule of which rounds count anywhere (maps, reliability, exports, player measures and
# flags, completion, leaderboards, scores): every round but a repeat, the replay of a photo the
# player has seen in the campaign (``Campaign.repeat_when_exhausted``), played for fun.
COUNTED: ColumnElement[bool] = Round.is_repeat.is_(False)


class RoundRule(Protocol):
    """What makes a round valid for the maps (``clickme.maps.aggregate.MapSettings``)."""

    @property
    def outcomes(self) -> tuple[str, ...]: ...

    @property
    def min_points(self) -> int: ...

    @property
    def min_rounds(self) -> int: ...


def is_valid(rule: RoundRule, outcome: str, n_points: int) -> bool:
    """Whether an ended round counts for the maps (and so keeps its image's play)."""
    return outcome in rule.outcomes and n_points >= rule.min_points


def valid_round(rule: RoundRule) -> ColumnElement[bool]:
    """``is_valid`` in SQL: an ended round that counts for the maps (never a repeat)."""
    return COUNTED & Round.outcome.in_(rule.outcomes) & (Round.n_points >= rule.min_points)


def in_flight() -> ColumnElement[bool]:
    """A round still running: no outcome yet and not past its deadline: its photo shown after
    ``:shown_since`` (its time limit and the grace ago) or, not shown yet, created after
    ``:created_since`` (the start bound ago); ``deadline_parameters`` gives both. The one
    definition of a running round (``game.service.round_deadline`` is the same clock for one
    round). Written with bound parameters, so that statements using it are built once."""
    unshown = Round.shown_at.is_(None) & (Round.started_at > bindparam("created_since"))
    shown = Round.shown_at > bindparam("shown_since")
    return Round.outcome.is_(None) & (unshown | shown)


def deadline_parameters(now: datetime, expiry_ms: int, start_bound_s: float) -> dict[str, datetime]:
    """The parameters of ``in_flight`` and ``expired`` at ``now``."""
    return {
        "created_since": now - timedelta(seconds=start_bound_s),
        "shown_since": now - timedelta(milliseconds=expiry_ms),
    }


def expired() -> ColumnElement[bool]:
    """A round left unfinished past its deadline (the complement of ``in_flight`` among the
    rounds without an outcome; the same parameters)."""
    return Round.outcome.is_(None) & ~in_flight()
