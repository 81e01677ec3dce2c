"""Game routes: start a round, send painted points (the live reveal), skip, finish, leaderboard."""

import asyncio
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Cookie, Query
from starlette.concurrency import run_in_threadpool

from clickme.campaigns import service as campaigns
from clickme.core.deps import AppRuntime, AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.core.runtime import Runtime
from clickme.game import service
from clickme.game.leaderboard import leaderboard
from clickme.game.points import xy_of
from clickme.game.schemas import (
    Brush,
    GuessOut,
    ImageRef,
    Leaderboard,
    PointBatchIn,
    RevealOut,
    RoundCreate,
    RoundOut,
    RoundResult,
)
from clickme.images.labels import class_name
from clickme.images.service import image_file_path
from clickme.players.identity import verify_player_token
from clickme.players.routes import PlayerId
from clickme.scoring.reveal import compose, render_mask, revealed_fraction
from clickme.scoring.scorer import top_guesses

router = APIRouter(prefix="/api", tags=["game"])
SHOWN_GUESSES = 5


@router.post("/rounds", status_code=201)
def start_round(body: RoundCreate, session: DbSession, player_id: PlayerId) -> RoundOut:
    slug = body.campaign or campaigns.DEFAULT_CAMPAIGN_SLUG
    campaign = campaigns.get_campaign_by_slug(session, slug)
    round_, image = service.start_round(
        session, player_id, campaign, (body.viewport_width, body.viewport_height)
    )
    rule = campaigns.reveal_rule(campaign)
    return RoundOut(
        round_id=round_.id,
        campaign=campaign.slug,
        image=ImageRef(
            id=image.id, url=f"/api/images/{image.id}/file", width=image.width, height=image.height
        ),
        class_name=class_name(image.class_index),
        time_limit_ms=campaign.time_limit_ms,
        top_k=campaign.top_k,
        brush=Brush(radius_px=rule.radius_px(image.width, image.height), softness=rule.softness),
    )


@dataclass(frozen=True)
class PendingReveal:
    stored: service.StoredBatch
    model_input: np.ndarray
    revealed: float


def _store_and_compose(
    runtime: Runtime, round_id: int, player_id: int, batch: PointBatchIn
) -> PendingReveal:
    """Commit the batch, then render what the DNN sees from every point so far."""
    settings = runtime.settings
    with runtime.database.session() as session:
        stored = service.store_batch(
            session,
            round_id,
            player_id,
            batch,
            max_points=settings.max_points_per_batch,
            grace_ms=settings.round_grace_ms,
        )
    context = stored.context
    rule = context.rule
    prepared = runtime.images.get(image_file_path(settings.images_dir, context.image), rule)
    mask = render_mask(xy_of(stored.points), prepared, rule)
    return PendingReveal(stored, compose(prepared, mask), revealed_fraction(mask))


async def _classify(runtime: Runtime, model_input: np.ndarray) -> np.ndarray:
    """The DNN's probabilities, or a clear 503 when the scorer cannot answer in time."""
    try:
        return await asyncio.wait_for(
            runtime.scorer.classify(model_input), runtime.settings.scorer_timeout_ms / 1000
        )
    except TimeoutError as exc:
        raise ClickmeError(503, "scorer_busy", "the DNN partner is busy, try again") from exc


def _record_success(runtime: Runtime, round_id: int, elapsed: int, limit: int) -> str:
    with runtime.database.session() as session:
        return service.record_success(session, round_id, elapsed, limit).outcome or "playing"


@router.post("/rounds/{round_id}/points")
async def post_points(
    round_id: int, batch: PointBatchIn, runtime: AppRuntime, player_id: PlayerId
) -> RevealOut:
    pending = await run_in_threadpool(_store_and_compose, runtime, round_id, player_id, batch)
    probs = await _classify(runtime, pending.model_input)
    stored = pending.stored
    round_, campaign = stored.context.round, stored.context.campaign
    true_class = stored.context.image.class_index
    hit = true_class in {g.class_index for g in top_guesses(probs, campaign.top_k)}
    state = round_.outcome or "playing"
    if hit and state == "playing":
        state = await run_in_threadpool(
            _record_success, runtime, round_.id, stored.elapsed_ms, campaign.time_limit_ms
        )
    score = (
        service.time_score(stored.elapsed_ms, campaign.time_limit_ms) if state == "correct" else 0
    )
    return RevealOut(
        seq=batch.seq,
        duplicate=stored.duplicate,
        guesses=[
            GuessOut(
                class_index=g.class_index, name=class_name(g.class_index), probability=g.probability
            )
            for g in top_guesses(probs, SHOWN_GUESSES)
        ],
        state=state,  # type: ignore[arg-type]
        score=round_.score if stored.duplicate else score,
        elapsed_ms=stored.elapsed_ms,
        revealed_fraction=pending.revealed,
    )


@router.post("/rounds/{round_id}/skip")
def skip_round(round_id: int, session: DbSession, player_id: PlayerId) -> RoundResult:
    return service.skip_round(session, round_id, player_id)


@router.post("/rounds/{round_id}/finish")
def finish_round(round_id: int, session: DbSession, player_id: PlayerId) -> RoundResult:
    return service.finish_round(session, round_id, player_id)


@router.get("/rounds/{round_id}")
def read_round(
    round_id: int, session: DbSession, player_id: PlayerId, settings: AppSettings
) -> RoundResult:
    return service.read_round(session, round_id, player_id, settings.round_grace_ms)


@router.get("/leaderboard")
def get_leaderboard(
    session: DbSession,
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    clickme_player: Annotated[str | None, Cookie()] = None,
) -> Leaderboard:
    player_id = verify_player_token(settings.resolved_secret_key(), clickme_player)
    return leaderboard(session, player_id, limit)
