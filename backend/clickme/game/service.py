"""Game service functions: rounds on the server's clock, point batches stored once, outcomes.

A round's clock starts when its photo is on the player's screen, as the client says (a start
call, or its first batch or finish, bounded by the server's own times), and at the latest the
start bound after the round was created: a round not shown by then is abandoned.

The hot path (a new batch, in order, in time, of a round whose clock runs) is one conditional
UPDATE and one INSERT, outside the ORM session: on PostgreSQL one statement in autocommit (the
claim a data-modifying CTE) where there were four (BEGIN, UPDATE, INSERT, COMMIT). Every other
case (a repeat, a gap, a late or ended round, a forgotten player's cookie) takes the slow path,
which says exactly why. The start call has a hot path of the same kind (``start_clock_now``).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from sqlalchemy import Row, Select, Table, bindparam, case, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from clickme.campaigns import service as campaigns
from clickme.campaigns.models import Campaign, CampaignVersion
from clickme.core.db import (
    Database,
    InTransaction,
    after_commit,
    announce_committed,
    built,
    note_for_commit,
    prefixed_columns,
    utcnow,
)
from clickme.core.errors import Conflict, NotFound, Unprocessable
from clickme.core.metrics import POINTS_STORED
from clickme.game.models import PointBatch, Round
from clickme.game.outcomes import (
    COUNTED,
    Outcome,
    RoundRule,
    deadline_parameters,
    expired,
    in_flight,
    is_valid,
)
from clickme.game.points import pack_points, unpack_points
from clickme.game.schemas import (
    Brush,
    ImageRef,
    PointBatchIn,
    RoundClock,
    RoundReplay,
    RoundResult,
)
from clickme.images.display import display_url
from clickme.images.labels import class_name
from clickme.images.models import Image
from clickme.players import service as players
from clickme.players.models import Player
from clickme.players.schemas import PlayerOut
from clickme.scoring.reveal import RevealRule
from clickme.scoring.tables import DnnModel

AnySelect = TypeVar("AnySelect", bound=Select)


def round_deadline(
    created_at: datetime, shown_at: datetime | None, time_limit_ms: int, start_bound_s: float
) -> datetime:
    """When a round's time is up: its time limit after its photo was shown or, while the photo
    is not shown, the start bound after the round was created (past it the round is abandoned)."""
    if shown_at is None:
        return created_at + timedelta(seconds=start_bound_s)
    return shown_at + timedelta(milliseconds=time_limit_ms)


@dataclass(frozen=True)
class RoundFacts:
    """What never changes about a round once its photo is shown: safe to cache in any process
    from then on (``shown_at`` is set once, never moved)."""

    round_id: int
    player_id: int
    created_at: datetime
    shown_at: datetime | None
    image_file: str
    width: int
    height: int
    class_index: int
    time_limit_ms: int
    top_k: int
    rule: RevealRule
    model_name: str

    def elapsed_ms(self, now: datetime) -> int:
        """Time on the round's clock (0 until its photo is shown)."""
        if self.shown_at is None:
            return 0
        return int((now - self.shown_at).total_seconds() * 1000)

    def deadline(self, start_bound_s: float) -> datetime:
        return round_deadline(self.created_at, self.shown_at, self.time_limit_ms, start_bound_s)


@dataclass(frozen=True)
class StoredBatch:
    """A batch as stored: its own points, and the round's state right after it."""

    facts: RoundFacts
    seq: int
    points: np.ndarray
    duplicate: bool
    elapsed_ms: int
    outcome: str | None
    score: int


def time_score(elapsed: int, time_limit_ms: int) -> int:
    """0 to 100 by the share of time left when the DNN got it (as in the original game)."""
    left = max(0, time_limit_ms - elapsed)
    return round(100 * left / time_limit_ms)


_PLAYERS_ROUNDS = (Round.campaign_id == bindparam("history_campaign_id")) & (
    Round.player_id == bindparam("history_player_id")
)
_SHOWN = select(Round.image_id).where(_PLAYERS_ROUNDS, COUNTED)
_LAST_PLAYED = (
    select(Round.image_id, func.max(Round.id).label("last"))
    .where(_PLAYERS_ROUNDS)
    .group_by(Round.image_id)
)


def player_history(campaign_id: int, player_id: int) -> campaigns.PlayerHistory:
    """The player's rounds in the campaign as assignment reads them (``pick_image``)."""
    parameters = {"history_campaign_id": campaign_id, "history_player_id": player_id}
    return campaigns.PlayerHistory(_SHOWN, _LAST_PLAYED, parameters)


_SCORE_AND_ROUNDS = select(func.coalesce(func.sum(Round.score), 0), func.count(Round.id)).where(
    Round.player_id == bindparam("player_id"), Round.outcome.is_not(None), COUNTED
)


def _score_and_rounds(session: Session, player_id: int) -> tuple[int, int]:
    """The player's total score and count of finished rounds."""
    total, played = session.connection().execute(_SCORE_AND_ROUNDS, {"player_id": player_id}).one()
    return total, played


def player_summary(session: Session, player: Player) -> PlayerOut:
    """The player with their total score and count of finished rounds."""
    total, played = _score_and_rounds(session, player.id)
    return PlayerOut(
        id=player.id, display_name=player.display_name, total_score=total, rounds_played=played
    )


# A new round's first read: the cookie's player's token epoch and the campaign asked for, with
# its DNN (NULLs when there is no such campaign), in one query.
_PLAYER_AND_CAMPAIGN = (
    select(
        Player.token_epoch,
        *prefixed_columns(Campaign, "campaign_"),
        *prefixed_columns(DnnModel, "model_"),
    )
    .select_from(Player)
    .outerjoin(Campaign, Campaign.slug == bindparam("slug"))
    .outerjoin(DnnModel, DnnModel.id == Campaign.model_id)
    .where(Player.id == bindparam("player_id"))
)


def campaign_for_player(
    session: Session, player_id: int, token_epoch: int, slug: str
) -> tuple[Campaign | None, DnnModel | None]:
    """The campaign a new round is asked in (None: no such slug) with its DNN, read with the
    player's token epoch: 401 first unless the cookie's is current (``require_token_epoch``).
    ``campaigns.playable`` then says whether it can be played. Both are built from the row
    (``built``), in no session: a new round only reads them."""
    parameters = {"player_id": player_id, "slug": slug}
    row = InTransaction(session).first(_PLAYER_AND_CAMPAIGN, parameters)
    players.require_epoch(None if row is None else row.token_epoch, token_epoch)
    assert row is not None  # the player exists: the epoch matched
    if row.campaign_id is None:
        return None, None
    model = None if row.model_id is None else built(DnnModel, row, "model_")
    return built(Campaign, row, "campaign_"), model


class NewRound(NamedTuple):
    """A round just made (not committed yet): its id, its image, and whether it is a repeat."""

    id: int
    image: Image
    repeat: bool


def start_round(
    session: Session,
    player_id: int,
    campaign: Campaign,
    viewport: tuple[int | None, int | None],
    rule: RoundRule,
    grace_ms: int,
    start_bound_s: float,
) -> NewRound:
    """A new round for the player (ending the one they had in flight in the campaign), on the
    image assignment picks (a repeat when it says so); ``rule``: what makes a round count (the
    campaign's map rules). Inserted without the ORM's unit of work (0.2 to 0.4 of the new
    round's 3.5 thread CPU ms, ``benchmarks/bench_requests.py``): load it to change it."""
    transaction = InTransaction(session)
    _end_held_rounds(
        session, transaction, campaign, player_id, utcnow(), rule, grace_ms, start_bound_s
    )
    history = player_history(campaign.id, player_id)
    pick = campaigns.pick_image(session, campaign, rule.min_rounds, history)
    row = {
        "player_id": player_id,
        "campaign_id": campaign.id,
        "campaign_version": campaign.version,
        "image_id": pick.image.id,
        "model_id": campaign.model_id,
        "started_at": utcnow(),
        "viewport_width": viewport[0],
        "viewport_height": viewport[1],
        "is_repeat": pick.repeat,
    }
    try:
        round_id = transaction.first(_NEW_ROUND, row).id
    except IntegrityError as exc:  # the same player started a round on this image at this moment
        raise Conflict(
            "round_conflict", "another round was starting at the same moment: try again"
        ) from exc
    return NewRound(round_id, pick.image, pick.repeat)


class _RoundRow(NamedTuple):
    """A round with its image and the campaign version it started under."""

    round_: Round
    image: Image
    version: CampaignVersion


# Rounds as a query reads them: the table (``Round``) or a CTE's rows with its columns.
_RoundsSource = type[Round] | ReadOnlyColumnCollection[str, Any]


def _in_context(query: AnySelect, rounds: _RoundsSource = Round) -> AnySelect:
    """The query over rounds joined to each round's image and the campaign version it started
    under (one row per round)."""
    return query.join(Image, Image.id == rounds.image_id).join(
        CampaignVersion,
        (CampaignVersion.campaign_id == rounds.campaign_id)
        & (CampaignVersion.version == rounds.campaign_version),
    )


_ROUND_ROW = _in_context(select(Round, Image, CampaignVersion)).where(
    Round.id == bindparam("round_id")
)


def _round_row(session: Session, round_id: int) -> _RoundRow | None:
    """The round with its image and campaign version, in one query; None for none."""
    row = session.execute(_ROUND_ROW, {"round_id": round_id}).first()
    return None if row is None else _RoundRow(row[0], row[1], row[2])


def _not_this_players(round_id: int) -> NotFound:
    return NotFound("round_not_found", f"no round {round_id} for this player")


def _load_round(session: Session, round_id: int, player_id: int) -> _RoundRow:
    """The player's round with its image and campaign version; 404 for anyone else's."""
    row = _round_row(session, round_id)
    if row is None or row.round_.player_id != player_id:
        raise _not_this_players(round_id)
    return row


# The player's own round (``_ROUND_ROW``) with the player's current token epoch, the cookie's
# check, in the same row.
_OWN_ROUND_ROW = (
    _ROUND_ROW.add_columns(Player.token_epoch)
    .join(Player, Player.id == Round.player_id)
    .where(Round.player_id == bindparam("player_id"))
)


def _load_own_round(session: Session, round_id: int, player_id: int, token_epoch: int) -> _RoundRow:
    """``_load_round`` for a cookie of ``token_epoch``, checked in the same query: 401
    ``no_player`` for an old cookie (before the 404 for a round that is not the player's)."""
    parameters = {"round_id": round_id, "player_id": player_id}
    row = session.execute(_OWN_ROUND_ROW, parameters).first()
    if row is None:
        players.require_token_epoch(session, player_id, token_epoch)
        raise _not_this_players(round_id)
    players.require_epoch(row.token_epoch, token_epoch)
    return _RoundRow(row[0], row[1], row[2])


def round_replay(session: Session, round_id: int, display_max_side: int) -> RoundReplay:
    """Any round's points in order, its photo and the brush of its campaign version, for staff
    (404 ``round_not_found`` for none)."""
    row = _round_row(session, round_id)
    if row is None:
        raise NotFound("round_not_found", f"no round {round_id}")
    round_, image, version = row
    rules = campaigns.rules_from_settings(version.settings)
    points = round_points(session, round_id, round_.last_seq)
    return RoundReplay(
        round_id=round_.id,
        image=ImageRef(
            id=image.id,
            url=display_url(image, display_max_side),
            width=image.width,
            height=image.height,
        ),
        brush=Brush(
            radius_px=rules.reveal.radius_px(image.width, image.height),
            softness=rules.reveal.softness,
        ),
        time_limit_ms=rules.time_limit_ms,
        outcome=round_.outcome,
        points=[(float(x), float(y), int(t)) for x, y, t in points.tolist()],
    )


def _facts_query(rounds: _RoundsSource = Round) -> Select:
    """The columns ``_facts_of`` reads, of each round with its image, campaign version and
    DNN."""
    return _in_context(
        select(
            rounds.player_id,
            rounds.started_at,
            rounds.shown_at,
            Image.file_name,
            Image.width,
            Image.height,
            Image.class_index,
            CampaignVersion.settings,
            DnnModel.name,
        ),
        rounds,
    ).join(DnnModel, DnnModel.id == rounds.model_id)


_FACTS = _facts_query().where(Round.id == bindparam("round_id"))


def load_facts(session: Session, round_id: int, player_id: int) -> RoundFacts:
    """The round's facts under the rules of the campaign version it started with, in one query
    of the columns they need (no ORM objects); 404 unless it is the player's round."""
    row = session.connection().execute(_FACTS, {"round_id": round_id}).first()
    if row is None or row.player_id != player_id:
        raise _not_this_players(round_id)
    return _facts_of(round_id, row)


def _facts_of(round_id: int, row: Row) -> RoundFacts:
    """The facts from a row of ``_FACTS``'s columns."""
    rules = campaigns.rules_from_settings(row.settings)
    return RoundFacts(
        round_id=round_id,
        player_id=row.player_id,
        created_at=row.started_at,
        shown_at=row.shown_at,
        image_file=row.file_name,
        width=row.width,
        height=row.height,
        class_index=row.class_index,
        time_limit_ms=rules.time_limit_ms,
        top_k=rules.top_k,
        rule=rules.reveal,
        model_name=row.name,
    )


@dataclass(frozen=True)
class EndedRound:
    round_id: int
    player_id: int
    outcome: str


# session.info key: the rounds the session's transaction ended.
_ENDED_ROUNDS = "clickme.ended_rounds"


def _note_ended(session: Session, round_id: int, player_id: int, outcome: str) -> None:
    note_for_commit(session, _ENDED_ROUNDS, EndedRound(round_id, player_id, outcome))


def on_rounds_ended(sessions: sessionmaker, listener: Callable[[list[EndedRound]], None]) -> None:
    """After each commit that ended rounds, ``listener`` gets them (from whichever route or
    code path ended them); a rollback forgets them."""
    after_commit(sessions, _ENDED_ROUNDS, listener)


_END = (
    update(Round)
    .where(Round.id == bindparam("round_id"), Round.outcome.is_(None))
    .values(
        outcome=bindparam("ending"),
        ended_at=bindparam("end_time"),
        score=bindparam("ending_score"),
        solved_ms=bindparam("solved_in"),
    )
    .returning(
        Round.id,
        Round.player_id,
        Round.campaign_id,
        Round.image_id,
        Round.outcome,
        Round.n_points,
        Round.is_repeat,
    )
)


def _end(
    session: Session,
    round_id: int,
    outcome: Outcome,
    now: datetime,
    score: int = 0,
    solved_ms: int | None = None,
) -> Row | None:
    """End the round (``solved_ms``: when the DNN got it, for a win) unless it has ended
    already: the round as ended (what ``_give_back_plays`` reads), or None when another
    request ended it first."""
    ending = {"round_id": round_id, "ending": outcome, "end_time": now, "ending_score": score}
    return session.connection().execute(_END, ending | {"solved_in": solved_ms}).first()


def _end_rounds(
    session: Session,
    ending: Sequence[tuple[int, Outcome]],
    now: datetime,
    rule: RoundRule,
) -> list[int]:
    """End each (round, outcome) unless another request already did, then give back the plays
    of those that do not count for the maps; the rounds this call ended."""
    ended = [
        row
        for round_id, outcome in ending
        if (row := _end(session, round_id, outcome, now)) is not None
    ]
    for row in ended:
        _note_ended(session, row.id, row.player_id, row.outcome)
    _give_back_plays(session, ended, rule)
    return [row.id for row in ended]


def _end_round(
    session: Session,
    round_id: int,
    outcome: Outcome,
    now: datetime,
    rule: RoundRule,
) -> bool:
    """Set the outcome unless another request already did; whether this call set it."""
    return bool(_end_rounds(session, [(round_id, outcome)], now, rule))


def _give_back_plays(session: Session, ended: Sequence[Row], rule: RoundRule) -> None:
    """Ended rounds (rows of ``_end``) that do not count for the maps give their images' plays
    back at once (repeats never took one)."""
    by_campaign: dict[int, list[int]] = {}
    for row in ended:
        if not row.is_repeat and not is_valid(rule, row.outcome, row.n_points):
            by_campaign.setdefault(row.campaign_id, []).append(row.image_id)
    for campaign_id, image_ids in sorted(by_campaign.items()):
        campaigns.release_plays(session, campaign_id, image_ids)


def _expiry_ms(session: Session, campaign: Campaign, grace_ms: int) -> int:
    """How long after its photo is shown a round of the campaign may still run: the longest
    time limit of its versions, and the grace. A campaign still at its first version has the
    time limit it started with (a game setting changed while live makes a new version)."""
    if campaign.version <= 1:
        return campaign.time_limit_ms + grace_ms
    limits = session.scalars(
        select(CampaignVersion.settings).where(CampaignVersion.campaign_id == campaign.id)
    ).all()
    return max([campaign.time_limit_ms, *(v["time_limit_ms"] for v in limits)]) + grace_ms


_OF_CAMPAIGN = select(Round.id).where(Round.campaign_id == bindparam("campaign_id"))
_OWN_IN_FLIGHT = _OF_CAMPAIGN.where(Round.player_id == bindparam("player_id"), in_flight())
# Others' expired rounds: on PostgreSQL those another request is ending are skipped.
_EXPIRED = (
    _OF_CAMPAIGN.where(expired()).order_by(Round.id).with_for_update(skip_locked=True, of=Round)
)


def _end_held_rounds(
    session: Session,
    transaction: InTransaction,
    campaign: Campaign,
    player_id: int,
    now: datetime,
    rule: RoundRule,
    grace_ms: int,
    start_bound_s: float,
) -> None:
    """Before a new round: the player's round still in flight ends as abandoned (one round in
    flight per player and campaign), and every round of the campaign left unfinished past its
    deadline ends as a timeout; those that do not count give their plays back."""
    expiry_ms = _expiry_ms(session, campaign, grace_ms)
    parameters: dict[str, object] = {"campaign_id": campaign.id, "player_id": player_id}
    parameters |= deadline_parameters(now, expiry_ms, start_bound_s)
    own = transaction.rows(_OWN_IN_FLIGHT, parameters)
    left = transaction.rows(_EXPIRED, parameters)
    ending = [(row.id, Outcome.ABANDONED) for row in own]
    ending += [(row.id, Outcome.TIMEOUT) for row in left]
    _end_rounds(session, ending, now, rule)


def round_points(session: Session, round_id: int, up_to_seq: int) -> np.ndarray:
    """Every point of the round up to a batch, in order (structured x, y, t)."""
    chunks = session.scalars(
        select(PointBatch.data)
        .where(PointBatch.round_id == round_id, PointBatch.seq <= up_to_seq)
        .order_by(PointBatch.seq)
    ).all()
    return unpack_points(list(chunks))


def _validate_points(batch: PointBatchIn, facts: RoundFacts, max_points: int) -> None:
    if len(batch.points) > max_points:
        raise Unprocessable("too_many_points", f"at most {max_points} points per batch")
    previous_t = -1
    for x, y, t in batch.points:
        if not (0 <= x < facts.width and 0 <= y < facts.height):
            raise Unprocessable(
                "point_out_of_image",
                f"point ({x}, {y}) is outside the {facts.width}x{facts.height} image",
            )
        if t < previous_t:
            raise Unprocessable("points_out_of_order", "point times must not decrease")
        previous_t = t


# A mapped class's ``__table__`` is typed as any FromClause; these are their Tables.
_ROUNDS = cast(Table, Round.__table__)
# A new round: the values ``start_round`` gives, and the model's fixed defaults of the other
# columns (the counters a round starts with) written in: the statement runs compiled once
# (``InTransaction``), where SQLAlchemy adds no defaults.
_NEW_ROUND_COLUMNS = (
    "player_id",
    "campaign_id",
    "campaign_version",
    "image_id",
    "model_id",
    "started_at",
    "viewport_width",
    "viewport_height",
    "is_repeat",
)
_NEW_ROUND_VALUES: dict[str, Any] = {name: bindparam(name) for name in _NEW_ROUND_COLUMNS} | {
    # the version the campaign's DNN has as the round starts, read by the insert itself
    "model_version": select(DnnModel.version)
    .where(DnnModel.id == bindparam("model_id"))
    .scalar_subquery(),
}
_ROUND_DEFAULTS = {
    column.key: column.default.arg
    for column in _ROUNDS.columns
    if column.key not in _NEW_ROUND_VALUES
    and isinstance(column.default, ScalarElementColumnDefault)
}
_NEW_ROUND = insert(_ROUNDS).values(_NEW_ROUND_VALUES | _ROUND_DEFAULTS).returning(_ROUNDS.c.id)
_POINT_BATCHES = cast(Table, PointBatch.__table__)
_PLAYERS = cast(Table, Player.__table__)
# The player's cookie is of their current token epoch (a forgotten player's old cookie changes
# nothing): checked inside the hot paths' own statements, so that none of its own is needed.
_CURRENT_COOKIE = exists().where(
    _PLAYERS.c.id == bindparam("claiming_player"),
    _PLAYERS.c.token_epoch == bindparam("token_epoch"),
)
# The hot path's two statements, built once (Core, not ORM: a reveal is a few hundred µs of SQL).
_CLAIM_NEXT_SEQ = (
    update(_ROUNDS)
    .where(
        _ROUNDS.c.id == bindparam("round_id"),
        _ROUNDS.c.last_seq == bindparam("previous_seq"),
        _ROUNDS.c.outcome.is_(None),
        _CURRENT_COOKIE,
    )
    .values(
        last_seq=bindparam("new_seq"),
        n_points=_ROUNDS.c.n_points + bindparam("added_points"),
        pointer_type=func.coalesce(_ROUNDS.c.pointer_type, bindparam("new_pointer_type")),
    )
)
_INSERT_BATCH = insert(_POINT_BATCHES)
_BATCH_COLUMNS = ("round_id", "seq", "n_points", "data", "received_ms", "received_at")
_INSERT_A_BATCH = _INSERT_BATCH.values({name: bindparam(name) for name in _BATCH_COLUMNS})
_CLAIMED = _CLAIM_NEXT_SEQ.returning(_ROUNDS.c.id.label("round_id")).cte("claimed")
# Both in one statement (for databases whose CTEs may modify data): the batch inserted only
# when the claim updated its round; its row count (kept: SQLAlchemy keeps an INSERT's only when
# asked) says which.
_CLAIM_AND_INSERT_BATCH = (
    insert(_POINT_BATCHES)
    .from_select(
        _BATCH_COLUMNS,
        select(
            _CLAIMED.c.round_id,
            *(bindparam(name, type_=_POINT_BATCHES.c[name].type) for name in _BATCH_COLUMNS[1:]),
        ),
    )
    .execution_options(preserve_rowcount=True)
)


def _claim_next_seq(
    session: Session, facts: RoundFacts, batch: PointBatchIn, token_epoch: int
) -> bool:
    """Move the round to this batch if it is the next one, the round still runs and the
    player's cookie is current."""
    claim = _claim_parameters(facts, batch, token_epoch)
    return bool(session.connection().execute(_CLAIM_NEXT_SEQ, claim).rowcount)


def _batch_row(
    facts: RoundFacts, batch: PointBatchIn, packed: bytes, elapsed: int, now: datetime
) -> dict:
    return {
        "round_id": facts.round_id,
        "seq": batch.seq,
        "n_points": len(batch.points),
        "data": packed,
        "received_ms": elapsed,
        "received_at": now,
    }


def _claim_parameters(facts: RoundFacts, batch: PointBatchIn, token_epoch: int) -> dict:
    return {
        "round_id": facts.round_id,
        "claiming_player": facts.player_id,
        "token_epoch": token_epoch,
        "previous_seq": batch.seq - 1,
        "new_seq": batch.seq,
        "added_points": len(batch.points),
        "new_pointer_type": batch.pointer_type,
    }


_START_CLOCK = (
    update(Round)
    .where(Round.id == bindparam("round_id"), Round.shown_at.is_(None), Round.outcome.is_(None))
    .values(shown_at=bindparam("clock"))
    .returning(Round.shown_at)
)


# The start call's hot path: the player's own round, not shown yet and within its start bound,
# for a cookie of their current token epoch, has its clock started now (never before its
# creation). On PostgreSQL its facts come back in the same statement (the UPDATE a
# data-modifying CTE); elsewhere ``_FACTS`` reads them in the same transaction.
_START_CLOCK_NOW = (
    update(_ROUNDS)
    .where(
        _ROUNDS.c.id == bindparam("round_id"),
        _ROUNDS.c.player_id == bindparam("claiming_player"),
        _ROUNDS.c.shown_at.is_(None),
        _ROUNDS.c.outcome.is_(None),
        _ROUNDS.c.started_at >= bindparam("created_since"),
        _CURRENT_COOKIE,
    )
    .values(
        shown_at=case(
            (
                _ROUNDS.c.started_at > bindparam("clock", type_=_ROUNDS.c.shown_at.type),
                _ROUNDS.c.started_at,
            ),
            else_=bindparam("clock"),
        )
    )
)
_STARTED = _START_CLOCK_NOW.returning(
    _ROUNDS.c.player_id,
    _ROUNDS.c.started_at,
    _ROUNDS.c.shown_at,
    _ROUNDS.c.image_id,
    _ROUNDS.c.campaign_id,
    _ROUNDS.c.campaign_version,
    _ROUNDS.c.model_id,
).cte("started")
_FACTS_OF_STARTED = _facts_query(_STARTED.c)


def start_clock_now(
    database: Database, round_id: int, player_id: int, token_epoch: int, start_bound_s: float
) -> RoundFacts | None:
    """The start call's hot path, without the ORM session: the facts of the player's round with
    its clock started now; None for anything else, nothing changed (``show_round`` then
    decides: a clock already running, an ended or abandoned round, someone else's, an old
    cookie)."""
    now = utcnow()
    parameters = {
        "round_id": round_id,
        "claiming_player": player_id,
        "token_epoch": token_epoch,
        "clock": now,
        "created_since": now - timedelta(seconds=start_bound_s),
    }
    if database.engine.dialect.name == "postgresql":
        row = database.row_of(_FACTS_OF_STARTED, parameters)
    else:  # SQLite's RETURNING names only the updated table's columns
        with database.engine.begin() as connection:
            if not connection.execute(_START_CLOCK_NOW, parameters).rowcount:
                return None
            row = connection.execute(_FACTS, {"round_id": round_id}).first()
    return None if row is None else _facts_of(round_id, row)


def _start_clock(
    session: Session,
    facts: RoundFacts,
    shown_ms_ago: int,
    now: datetime,
    rule: RoundRule,
    start_bound_s: float,
) -> RoundFacts:
    """The facts with the round's clock started: the client says its photo went on screen
    ``shown_ms_ago`` before now, never earlier than the round's creation; a clock once started
    never moves. A round not shown by the start bound is abandoned instead (and committed):
    its facts come back with ``shown_at`` still None."""
    if facts.shown_at is not None:
        return facts
    if now <= facts.deadline(start_bound_s):
        shown_at = max(facts.created_at, now - timedelta(milliseconds=shown_ms_ago))
        clock = {"round_id": facts.round_id, "clock": shown_at}
        started = session.connection().scalar(_START_CLOCK, clock)
        if started is not None:  # this call started the clock (else: it ran, or the round ended)
            return replace(facts, shown_at=started)
    else:
        loaded = _load_round(session, facts.round_id, facts.player_id)
        _ended_result(session, loaded, Outcome.ABANDONED, now, rule)
        session.commit()
    round_ = session.get_one(Round, facts.round_id, populate_existing=True)
    return replace(facts, shown_at=round_.shown_at)


def _round_ended(session: Session, round_id: int) -> Conflict:
    outcome = session.get_one(Round, round_id).outcome
    return Conflict("round_ended", f"the round has ended ({outcome})")


def show_round(
    session: Session, facts: RoundFacts, rule: RoundRule, start_bound_s: float
) -> tuple[RoundClock, RoundFacts]:
    """The photo is on the player's screen: the round's clock starts now (a repeat changes
    nothing); 409 ``round_ended`` when it ended before (abandoned past the start bound). The
    clock, and the facts with it started."""
    now = utcnow()
    started = _start_clock(session, facts, 0, now, rule, start_bound_s)
    if started.shown_at is None:
        raise _round_ended(session, facts.round_id)
    return round_clock(started, now), started


def round_clock(started: RoundFacts, now: datetime) -> RoundClock:
    """The clock of a round whose photo is shown, as the start call answers it."""
    assert started.shown_at is not None  # the clock runs
    return RoundClock(
        round_id=started.round_id,
        time_limit_ms=started.time_limit_ms,
        elapsed_ms=started.elapsed_ms(now),
        display_ms=display_ms(started.created_at, started.shown_at),
    )


def display_ms(created_at: datetime, shown_at: datetime) -> int:
    """Time to display: from the round's creation until its photo was on screen (its clock's
    start), as the server measured it."""
    return int((shown_at - created_at).total_seconds() * 1000)


def _claim_and_insert(database: Database, claim: dict, row: dict, durable: bool) -> bool:
    """The claim (``_CLAIM_NEXT_SEQ``) and, when it moved the round, the batch's insert,
    committed (on PostgreSQL, unless ``durable``, without waiting for the WAL's flush);
    whether the batch was stored."""
    if database.engine.dialect.name == "postgresql":
        parameters = {**claim, **row}
        return bool(database.rowcount_of(_CLAIM_AND_INSERT_BATCH, parameters, durable))
    return database.each_changes_a_row([(_CLAIM_NEXT_SEQ, claim), (_INSERT_A_BATCH, row)])


def store_next_batch(
    database: Database,
    facts: RoundFacts,
    batch: PointBatchIn,
    max_points: int,
    token_epoch: int,
    durable: bool = True,
) -> StoredBatch | None:
    """The hot path: the round's next batch, before its time is up, of a round whose clock
    runs, for a cookie of the player's current token epoch, stored and committed without the
    ORM session (``durable``: see ``BatchRules``); None for anything else, stored nothing
    (``store_batch`` then decides)."""
    now = utcnow()
    _validate_points(batch, facts, max_points)
    if facts.shown_at is None:
        return None
    elapsed = facts.elapsed_ms(now)
    if elapsed > facts.time_limit_ms:  # the batch that ends the round
        return None
    packed = pack_points(batch.points)
    row = _batch_row(facts, batch, packed, elapsed, now)
    if not _claim_and_insert(database, _claim_parameters(facts, batch, token_epoch), row, durable):
        return None
    POINTS_STORED.inc(len(batch.points))
    return StoredBatch(facts, batch.seq, unpack_points([packed]), False, elapsed, None, 0)


@dataclass(frozen=True)
class BatchRules:
    """What batches are stored under: the most points in one, the grace past a round's time
    limit, what makes a round count, how long a round may wait for its photo's display, and
    whether a round's next batch on time is durable on its own commit (PostgreSQL; else its
    commit returns before the WAL's flush, as ``Database.lazy_commit_engine`` says: the
    round's end, or any later durable commit, flushes it)."""

    max_points: int
    grace_ms: int
    rule: RoundRule
    start_bound_s: float
    durable: bool = True


def store_any_batch(
    database: Database,
    facts: RoundFacts,
    batch: PointBatchIn,
    rules: BatchRules,
    token_epoch: int,
) -> StoredBatch:
    """``store_next_batch``, else (anything but the round's next batch on time) ``store_batch``
    in a session of its own."""
    stored = store_next_batch(database, facts, batch, rules.max_points, token_epoch, rules.durable)
    if stored is not None:
        return stored
    with database.session() as session:
        return store_batch(session, facts, batch, rules, token_epoch)


def store_batch(
    session: Session,
    facts: RoundFacts,
    batch: PointBatchIn,
    rules: BatchRules,
    token_epoch: int,
) -> StoredBatch:
    """Store a batch exactly once, in order, while the round runs, for a player whose cookie
    (of ``token_epoch``) is current; answer a repeat as stored. A first batch before the start
    call starts the clock by its points' times."""
    now = utcnow()
    _validate_points(batch, facts, rules.max_points)
    packed = pack_points(batch.points)  # after validation: a huge coordinate overflows float32
    if facts.shown_at is None:
        players.require_token_epoch(session, facts.player_id, token_epoch)
    facts = _start_clock(session, facts, batch.points[-1][2], now, rules.rule, rules.start_bound_s)
    if facts.shown_at is None:
        raise _round_ended(session, facts.round_id)
    elapsed = facts.elapsed_ms(now)
    in_time = elapsed <= facts.time_limit_ms + rules.grace_ms
    if in_time and _claim_next_seq(session, facts, batch, token_epoch):
        session.connection().execute(_INSERT_BATCH, _batch_row(facts, batch, packed, elapsed, now))
        POINTS_STORED.inc(len(batch.points))
        outcome = None
        if elapsed > facts.time_limit_ms:
            _end_round(session, facts.round_id, Outcome.TIMEOUT, now, rules.rule)
            outcome = Outcome.TIMEOUT.value
        points = unpack_points([packed])
        return StoredBatch(facts, batch.seq, points, False, elapsed, outcome, 0)
    players.require_token_epoch(session, facts.player_id, token_epoch)
    return _refuse_or_acknowledge(session, facts, batch, packed, now, rules.grace_ms, rules.rule)


def _refuse_or_acknowledge(
    session: Session,
    facts: RoundFacts,
    batch: PointBatchIn,
    packed: bytes,
    now: datetime,
    grace_ms: int,
    rule: RoundRule,
) -> StoredBatch:
    """The slow path: a repeat is acknowledged as stored; anything else gets its precise 409."""
    round_ = session.get_one(Round, facts.round_id, populate_existing=True)
    if batch.seq <= round_.last_seq:
        stored = session.scalar(
            select(PointBatch).where(
                PointBatch.round_id == facts.round_id, PointBatch.seq == batch.seq
            )
        )
        if stored is None or stored.data != packed:
            raise Conflict(
                "seq_conflict", f"batch {batch.seq} was already stored with other points"
            )
        points = unpack_points([stored.data])
        return StoredBatch(
            facts, batch.seq, points, True, stored.received_ms, round_.outcome, round_.score
        )
    if round_.outcome is None and facts.elapsed_ms(now) > facts.time_limit_ms + grace_ms:
        _end_round(session, facts.round_id, Outcome.TIMEOUT, now, rule)
        session.commit()
        round_.outcome = Outcome.TIMEOUT.value
    if round_.outcome is not None:
        raise Conflict("round_ended", f"the round has ended ({round_.outcome})")
    if batch.seq != round_.last_seq + 1:
        raise Conflict("seq_out_of_order", f"expected batch {round_.last_seq + 1}, got {batch.seq}")
    raise Conflict("seq_conflict", f"batch {batch.seq} raced with another request")


def record_success(
    session: Session, facts: RoundFacts, elapsed: int, rule: RoundRule
) -> tuple[str, int]:
    """The DNN got it in time: end the round as correct with its time score (unless ended);
    a round won with too few points to count gives its play back."""
    score = time_score(elapsed, facts.time_limit_ms)
    won = _end(session, facts.round_id, Outcome.CORRECT, utcnow(), score, solved_ms=elapsed)
    if won is not None:
        _note_ended(session, facts.round_id, facts.player_id, Outcome.CORRECT)
        _give_back_plays(session, [won], rule)
        return Outcome.CORRECT.value, score
    round_ = session.get_one(Round, facts.round_id)
    return round_.outcome or "playing", round_.score


# A win that keeps its image's play (a repeat's, or one with the points to count): nothing is
# given back with it, so its end is one statement, needing no transaction of its own.
_WIN_KEEPING_ITS_PLAY = _END.where(~COUNTED | (Round.n_points >= bindparam("min_points")))


def record_success_now(
    database: Database, facts: RoundFacts, elapsed: int, rule: RoundRule
) -> tuple[str, int] | None:
    """The hot path of ``record_success``: a running round whose win keeps its play ended as
    correct in one UPDATE committed on its own (``Database.row_of``: no session), its end announced
    to the listeners as a commit's; None, having changed nothing, for anything else (a round
    already ended, a win that gives its play back: ``record_success`` decides)."""
    if Outcome.CORRECT not in rule.outcomes:  # every win but a repeat's gives its play back
        return None
    score = time_score(elapsed, facts.time_limit_ms)
    parameters = {
        "round_id": facts.round_id,
        "ending": Outcome.CORRECT,
        "end_time": utcnow(),
        "ending_score": score,
        "solved_in": elapsed,
        "min_points": rule.min_points,
    }
    won = database.row_of(_WIN_KEEPING_ITS_PLAY, parameters)
    if won is None:
        return None
    ended = EndedRound(facts.round_id, facts.player_id, Outcome.CORRECT.value)
    announce_committed(database.sessionmaker, _ENDED_ROUNDS, [ended])
    return Outcome.CORRECT.value, score


def _result(session: Session, round_: Round, image: Image, now: datetime) -> RoundResult:
    ended = round_.ended_at or now
    elapsed = round_.solved_ms
    if elapsed is None:
        shown = round_.shown_at or ended  # never shown: no time on its clock
        elapsed = int((ended - shown).total_seconds() * 1000)
    return RoundResult(
        round_id=round_.id,
        outcome=round_.outcome,
        score=round_.score,
        elapsed_ms=elapsed,
        class_name=class_name(image.class_index),
        total_score=_score_and_rounds(session, round_.player_id)[0],
    )


def _ended_result(
    session: Session,
    loaded: _RoundRow,
    outcome: Outcome | None,
    now: datetime,
    rule: RoundRule,
) -> RoundResult:
    """End the loaded round with this outcome (if it runs and one is given), then its result."""
    round_, image, _version = loaded
    round_id = round_.id
    if outcome is None or round_.outcome is not None:
        return _result(session, round_, image, now)
    # Ended here: the loaded round takes what the UPDATE set (as loaded, not to be written
    # again); ended first by another request: read it.
    if _end_round(session, round_id, outcome, now, rule):
        for name, value in (("outcome", outcome.value), ("ended_at", now), ("score", 0)):
            set_committed_value(round_, name, value)
    else:
        session.refresh(round_)
    return _result(session, round_, image, now)


def skip_round(
    session: Session, round_id: int, player_id: int, token_epoch: int, rule: RoundRule
) -> RoundResult:
    """The player skips (odd or mislabelled image): no points; repeating it changes nothing.
    The cookie (of ``token_epoch``) is checked in the round's own query."""
    loaded = _load_own_round(session, round_id, player_id, token_epoch)
    return _ended_result(session, loaded, Outcome.SKIP, utcnow(), rule)


def finish_round(
    session: Session, facts: RoundFacts, rule: RoundRule, start_bound_s: float
) -> RoundResult:
    """The client's timer ran out: the server's clock decides whether the round is over (a
    clock the client never started, by the time limit ago, within the server's times)."""
    now = utcnow()
    facts = _start_clock(session, facts, facts.time_limit_ms, now, rule, start_bound_s)
    timed_out = facts.shown_at is not None and now >= facts.deadline(start_bound_s)
    loaded = _load_round(session, facts.round_id, facts.player_id)
    result = _ended_result(session, loaded, Outcome.TIMEOUT if timed_out else None, now, rule)
    if result.outcome is None:
        raise Conflict("round_running", "the round's time is not up yet")
    return result


def read_round(
    session: Session, facts: RoundFacts, grace_ms: int, rule: RoundRule, start_bound_s: float
) -> RoundResult:
    """The round's result so far; a round past its time and grace is closed as a timeout, one
    never shown by the start bound as abandoned."""
    now = utcnow()
    outcome = None
    if facts.shown_at is None:
        if now > facts.deadline(start_bound_s):
            outcome = Outcome.ABANDONED
    elif now > facts.deadline(start_bound_s) + timedelta(milliseconds=grace_ms):
        outcome = Outcome.TIMEOUT
    loaded = _load_round(session, facts.round_id, facts.player_id)
    return _ended_result(session, loaded, outcome, now, rule)


def points_by_round(session: Session, round_ids: list[int]) -> dict[int, np.ndarray]:
    rows = session.execute(
        select(PointBatch.round_id, PointBatch.data)
        .where(PointBatch.round_id.in_(round_ids))
        .order_by(PointBatch.round_id, PointBatch.seq)
    ).all()
    return {
        round_id: unpack_points([row.data for row in batches])
        for round_id, batches in groupby(rows, key=lambda row: row.round_id)
    }


def points_with_seq_by_round(
    session: Session, round_ids: list[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """round id -> (its points in order as ``points_by_round`` has them, each point's batch
    sequence number as int32)."""
    rows = session.execute(
        select(PointBatch.round_id, PointBatch.seq, PointBatch.data)
        .where(PointBatch.round_id.in_(round_ids))
        .order_by(PointBatch.round_id, PointBatch.seq)
    ).all()
    result = {}
    for round_id, grouped in groupby(rows, key=lambda row: row.round_id):
        batches = list(grouped)
        points = unpack_points([row.data for row in batches])
        sizes = [len(row.data) // points.dtype.itemsize for row in batches]
        seqs = np.repeat(np.array([row.seq for row in batches], dtype=np.int32), sizes)
        result[round_id] = (points, seqs)
    return result
