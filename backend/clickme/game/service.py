"""Game service functions: rounds on the server's clock, point batches stored once, outcomes."""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clickme.campaigns import service as campaigns
from clickme.campaigns.models import Campaign
from clickme.core.db import utcnow
from clickme.core.errors import ClickmeError
from clickme.game.models import PointBatch, Round
from clickme.game.points import pack_points, unpack_points
from clickme.game.schemas import PointBatchIn, RoundResult
from clickme.images.labels import class_name
from clickme.images.models import Image
from clickme.models.models import DnnModel
from clickme.players.models import Player
from clickme.players.service import player_summary
from clickme.scoring.reveal import RevealRule


@dataclass(frozen=True)
class RoundContext:
    """What a reveal needs to know about its round, as read in one query."""

    round: Round
    image: Image
    campaign: Campaign

    @property
    def rule(self) -> RevealRule:
        return campaigns.reveal_rule(self.campaign)


@dataclass(frozen=True)
class StoredBatch:
    """A batch after storing: every point of the round up to it, and the round's state."""

    context: RoundContext
    points: np.ndarray
    duplicate: bool
    elapsed_ms: int


def elapsed_ms(round_: Round, now: datetime) -> int:
    return int((now - round_.started_at).total_seconds() * 1000)


def time_score(elapsed: int, time_limit_ms: int) -> int:
    """0 to 100 by the share of time left when the DNN got it (as in the original game)."""
    left = max(0, time_limit_ms - elapsed)
    return round(100 * left / time_limit_ms)


def start_round(
    session: Session,
    player_id: int,
    campaign: Campaign,
    viewport: tuple[int | None, int | None],
) -> tuple[Round, Image]:
    image = campaigns.pick_image(session, campaign, player_id)
    model = session.get_one(DnnModel, campaign.model_id)
    round_ = Round(
        player_id=player_id,
        campaign_id=campaign.id,
        campaign_version=campaign.version,
        image_id=image.id,
        model_id=model.id,
        model_version=model.version,
        started_at=utcnow(),
        viewport_width=viewport[0],
        viewport_height=viewport[1],
    )
    session.add(round_)
    session.flush()
    return round_, image


def load_round(session: Session, round_id: int, player_id: int) -> RoundContext:
    """The player's round with its image and campaign; 404 for anyone else's."""
    row = session.execute(
        select(Round, Image, Campaign)
        .join(Image, Image.id == Round.image_id)
        .join(Campaign, Campaign.id == Round.campaign_id)
        .where(Round.id == round_id)
    ).first()
    if row is None or row[0].player_id != player_id:
        raise ClickmeError(404, "round_not_found", f"no round {round_id} for this player")
    return RoundContext(*row)


def _end_round(
    session: Session, round_: Round, outcome: str, now: datetime, score: int = 0
) -> bool:
    """Set the outcome unless another request already did; True when this call ended it."""
    ended = session.execute(
        update(Round)
        .where(Round.id == round_.id, Round.outcome.is_(None))
        .values(outcome=outcome, ended_at=now, score=score)
    ).rowcount
    session.refresh(round_)
    return bool(ended)


def close_if_expired(session: Session, context: RoundContext, now: datetime, grace_ms: int) -> None:
    """A round past its time limit (plus the network grace) ends as a timeout."""
    round_ = context.round
    if (
        round_.outcome is None
        and elapsed_ms(round_, now) > context.campaign.time_limit_ms + grace_ms
    ):
        _end_round(session, round_, "timeout", now)


def _round_points(session: Session, round_id: int, up_to_seq: int) -> np.ndarray:
    chunks = session.scalars(
        select(PointBatch.data)
        .where(PointBatch.round_id == round_id, PointBatch.seq <= up_to_seq)
        .order_by(PointBatch.seq)
    ).all()
    return unpack_points(list(chunks))


def _validate_points(batch: PointBatchIn, image: Image, max_points: int) -> None:
    if len(batch.points) > max_points:
        raise ClickmeError(422, "too_many_points", f"at most {max_points} points per batch")
    previous_t = -1
    for x, y, t in batch.points:
        if not (0 <= x < image.width and 0 <= y < image.height):
            raise ClickmeError(
                422,
                "point_out_of_image",
                f"point ({x}, {y}) is outside the {image.width}x{image.height} image",
            )
        if t < previous_t:
            raise ClickmeError(422, "points_out_of_order", "point times must not decrease")
        previous_t = t


def _acknowledge_repeat(
    session: Session, context: RoundContext, batch: PointBatchIn, packed: bytes
) -> StoredBatch:
    stored = session.scalar(
        select(PointBatch).where(
            PointBatch.round_id == context.round.id, PointBatch.seq == batch.seq
        )
    )
    if stored is None or stored.data != packed:
        raise ClickmeError(
            409, "seq_conflict", f"batch {batch.seq} was already stored with other points"
        )
    points = _round_points(session, context.round.id, batch.seq)
    return StoredBatch(context, points, duplicate=True, elapsed_ms=stored.received_ms)


def store_batch(
    session: Session,
    round_id: int,
    player_id: int,
    batch: PointBatchIn,
    max_points: int,
    grace_ms: int,
) -> StoredBatch:
    """Store a batch exactly once, in order, while the round runs; answer a repeat as stored."""
    now = utcnow()
    context = load_round(session, round_id, player_id)
    round_ = context.round
    packed = pack_points(batch.points)
    if batch.seq <= round_.last_seq:
        return _acknowledge_repeat(session, context, batch, packed)
    close_if_expired(session, context, now, grace_ms)
    if round_.outcome is not None:
        session.commit()
        raise ClickmeError(409, "round_ended", f"the round has ended ({round_.outcome})")
    if batch.seq != round_.last_seq + 1:
        raise ClickmeError(
            409, "seq_out_of_order", f"expected batch {round_.last_seq + 1}, got {batch.seq}"
        )
    _validate_points(batch, context.image, max_points)
    elapsed = elapsed_ms(round_, now)
    claimed = session.execute(
        update(Round)
        .where(Round.id == round_.id, Round.last_seq == batch.seq - 1, Round.outcome.is_(None))
        .values(
            last_seq=batch.seq,
            n_points=Round.n_points + len(batch.points),
            pointer_type=round_.pointer_type or batch.pointer_type,
        )
    ).rowcount
    if not claimed:
        raise ClickmeError(409, "seq_conflict", f"batch {batch.seq} raced with another request")
    session.add(
        PointBatch(
            round_id=round_.id,
            seq=batch.seq,
            n_points=len(batch.points),
            data=packed,
            received_ms=elapsed,
            received_at=now,
        )
    )
    session.flush()
    if elapsed > context.campaign.time_limit_ms:
        _end_round(session, round_, "timeout", now)
    else:
        session.refresh(round_)
    points = _round_points(session, round_.id, batch.seq)
    return StoredBatch(context, points, duplicate=False, elapsed_ms=elapsed)


def record_success(session: Session, round_id: int, elapsed: int, time_limit_ms: int) -> Round:
    """The DNN got it: end the round as correct with the time score (unless already ended)."""
    round_ = session.get_one(Round, round_id)
    if elapsed <= time_limit_ms:
        score = time_score(elapsed, time_limit_ms)
        session.execute(
            update(Round)
            .where(Round.id == round_id, Round.outcome.is_(None))
            .values(outcome="correct", score=score, solved_ms=elapsed, ended_at=utcnow())
        )
        session.refresh(round_)
    return round_


def round_result(session: Session, context: RoundContext, now: datetime) -> RoundResult:
    round_ = context.round
    ended = round_.ended_at or now
    player = session.get_one(Player, round_.player_id)
    return RoundResult(
        round_id=round_.id,
        outcome=round_.outcome,  # type: ignore[arg-type]
        score=round_.score,
        elapsed_ms=round_.solved_ms if round_.solved_ms is not None else elapsed_ms(round_, ended),
        class_name=class_name(context.image.class_index),
        total_score=player_summary(session, player).total_score,
    )


def skip_round(session: Session, round_id: int, player_id: int) -> RoundResult:
    """The player skips (odd or mislabelled image): no points; repeating it changes nothing."""
    now = utcnow()
    context = load_round(session, round_id, player_id)
    if context.round.outcome is None:
        _end_round(session, context.round, "skip", now)
    return round_result(session, context, now)


def finish_round(session: Session, round_id: int, player_id: int) -> RoundResult:
    """The client's timer ran out: the server's clock decides whether the round is over."""
    now = utcnow()
    context = load_round(session, round_id, player_id)
    round_ = context.round
    if round_.outcome is None:
        if elapsed_ms(round_, now) < context.campaign.time_limit_ms:
            raise ClickmeError(409, "round_running", "the round's time is not up yet")
        _end_round(session, round_, "timeout", now)
    return round_result(session, context, now)


def read_round(session: Session, round_id: int, player_id: int, grace_ms: int) -> RoundResult:
    now = utcnow()
    context = load_round(session, round_id, player_id)
    close_if_expired(session, context, now, grace_ms)
    return round_result(session, context, now)
