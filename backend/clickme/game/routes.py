"""Game routes: start a round, send painted points (the live reveal), skip, finish, leaderboard;
and the staff's replay of a round's painted points."""

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Cookie, Query, Response
from starlette.concurrency import run_in_threadpool

from clickme.accounts.deps import StaffMember
from clickme.campaigns import service as campaigns
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.core.schemas import DbId
from clickme.game import service
from clickme.game.deps import AppRuntime
from clickme.game.deps import GameRuntime as Runtime
from clickme.game.points import xy_of
from clickme.game.schemas import (
    Brush,
    GuessOut,
    ImageRef,
    Leaderboard,
    PointBatchIn,
    RevealOut,
    RoundClock,
    RoundCreate,
    RoundOut,
    RoundReplay,
    RoundResult,
)
from clickme.images.display import display_url
from clickme.images.labels import class_name, class_names_shown
from clickme.players import service as players
from clickme.players.deps import IpHash, PlayerId
from clickme.players.ratelimit import enforce
from clickme.scoring.reveal import compose, render_mask, revealed_fraction
from clickme.scoring.scorer import Scorer, ScorerBusyError, top_guesses

router = APIRouter(prefix="/api", tags=["game"])
SHOWN_GUESSES = 5


@router.post("/rounds", status_code=201)
def start_round(
    body: RoundCreate, session: DbSession, runtime: AppRuntime, player_id: PlayerId, ip_hash: IpHash
) -> RoundOut:
    """A new round and its photo (sized for the screen); its clock waits for the photo."""
    enforce(runtime.limiter, runtime.limits.rounds_per_ip, ip_hash)
    slug = body.campaign or campaigns.DEFAULT_CAMPAIGN_SLUG
    campaign = campaigns.get_campaign_by_slug(session, slug)
    round_, image = service.start_round(
        session,
        player_id,
        campaign,
        (body.viewport_width, body.viewport_height),
        runtime.map_rules,
        runtime.settings.round_grace_ms,
        runtime.settings.round_start_bound_s,
    )
    rule = campaigns.reveal_rule(campaign)
    return RoundOut(
        round_id=round_.id,
        campaign=campaign.slug,
        image=ImageRef(
            id=image.id,
            url=display_url(image, runtime.settings.display_max_side),
            width=image.width,
            height=image.height,
        ),
        class_name=class_name(image.class_index),
        class_label=class_names_shown(image.class_index),
        time_limit_ms=campaign.time_limit_ms,
        top_k=campaign.top_k,
        brush=Brush(radius_px=rule.radius_px(image.width, image.height), softness=rule.softness),
        start_within_ms=round(runtime.settings.round_start_bound_s * 1000),
        repeat=round_.is_repeat,
    )


@dataclass(frozen=True)
class PendingReveal:
    """A new batch, stored: what the DNN is to see (a repeated batch has nothing to score)."""

    stored: service.StoredBatch
    model_input: np.ndarray | None
    revealed: float
    scorer: Scorer | None


def round_facts(runtime: Runtime, round_id: int, player_id: int) -> service.RoundFacts:
    """The round's fixed facts, cached in this process once its clock runs; 404 unless it is
    this player's."""
    facts = runtime.rounds.get(round_id)
    if facts is None:
        with runtime.database.session() as session:
            facts = service.load_facts(session, round_id, player_id)
        keep_facts(runtime, facts)
    if facts.player_id != player_id:
        raise ClickmeError(404, "round_not_found", f"no round {round_id} for this player")
    return facts


def keep_facts(runtime: Runtime, facts: service.RoundFacts) -> None:
    """Caches facts whose clock has started (before, ``shown_at`` may still change)."""
    if facts.shown_at is not None:
        runtime.rounds.put(facts.round_id, facts)


def _reveal_mask(runtime: Runtime, stored: service.StoredBatch) -> np.ndarray:
    """The round's mask after this batch: the previous mask (kept in memory) grown by the new
    points, or, when this process has not seen the previous batch, rendered from all points."""
    facts = stored.facts
    prepared = runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)
    cached = runtime.masks.get(facts.round_id)
    if not stored.duplicate and (stored.seq == 1 or (cached and cached[0] == stored.seq - 1)):
        mask = render_mask(xy_of(stored.points), prepared, facts.rule)
        if cached and stored.seq > 1:
            mask = np.maximum(cached[1], mask)
    else:
        with runtime.database.session() as session:
            points = service.round_points(session, facts.round_id, stored.seq)
        mask = render_mask(xy_of(points), prepared, facts.rule)
    if stored.outcome is None and not stored.duplicate:
        runtime.masks.put(facts.round_id, (stored.seq, mask))
    return mask


def _store_and_compose(
    runtime: Runtime, round_id: int, player_id: int, batch: PointBatchIn
) -> PendingReveal:
    """Count the batch against the player's rate limit (a Redis call, off the event loop),
    commit it, then render what the DNN sees from every point so far (nothing for a repeat)."""
    enforce(runtime.limiter, runtime.limits.reveals_per_player, str(player_id))
    settings = runtime.settings
    facts = round_facts(runtime, round_id, player_id)
    with runtime.database.session() as session:
        stored = service.store_batch(
            session,
            facts,
            batch,
            max_points=settings.max_points_per_batch,
            grace_ms=settings.round_grace_ms,
            rule=runtime.map_rules,
            start_bound_s=settings.round_start_bound_s,
        )
    if stored.facts is not facts:
        keep_facts(runtime, stored.facts)
    if stored.duplicate:
        return PendingReveal(stored, None, _last_answer(runtime, stored).revealed, None)
    mask = _reveal_mask(runtime, stored)
    prepared = runtime.images.get(settings.images_dir / facts.image_file, facts.rule)
    scorer = runtime.scorer_for(facts.model_name)
    return PendingReveal(stored, compose(prepared, mask), revealed_fraction(mask), scorer)


async def _classify(runtime: Runtime, scorer: Scorer, model_input: np.ndarray) -> np.ndarray:
    """The DNN's probabilities, or a clear 503 when the scorer cannot answer in time."""
    try:
        return await asyncio.wait_for(
            scorer.classify(model_input), runtime.settings.scorer_timeout_ms / 1000
        )
    except TimeoutError as exc:
        raise ScorerBusyError() from exc


@dataclass(frozen=True)
class Answer:
    """What a round's last reveal answered: the DNN's guesses and the revealed share."""

    guesses: list[GuessOut]
    revealed: float


def _last_answer(runtime: Runtime, stored: service.StoredBatch) -> Answer:
    """The round's last answer (kept by the process that gave it); elsewhere no guesses and
    the share revealed by the stored points up to the repeated batch."""
    answer = runtime.answers.get(stored.facts.round_id)
    if answer is not None:
        return answer
    facts = stored.facts
    prepared = runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)
    with runtime.database.session() as session:
        points = service.round_points(session, facts.round_id, stored.seq)
    return Answer([], revealed_fraction(render_mask(xy_of(points), prepared, facts.rule)))


def _record_success(runtime: Runtime, facts: service.RoundFacts, elapsed: int) -> tuple[str, int]:
    runtime.masks.pop(facts.round_id)
    with runtime.database.session() as session:
        return service.record_success(session, facts, elapsed, runtime.map_rules)


def _guesses(probs: np.ndarray) -> list[GuessOut]:
    return [
        GuessOut(
            class_index=g.class_index, name=class_name(g.class_index), probability=g.probability
        )
        for g in top_guesses(probs, SHOWN_GUESSES)
    ]


@router.post("/rounds/{round_id}/points")
async def post_points(
    round_id: DbId,
    batch: PointBatchIn,
    runtime: AppRuntime,
    player_id: PlayerId,
    response: Response,
) -> RevealOut:
    """Store the batch and answer with the DNN's guesses. The DNN runs at most once per batch:
    a repeated batch is answered from what was decided (the round's state and score, the
    guesses of its last answer) and never reaches the scorer."""
    started = time.perf_counter()
    pending = await run_in_threadpool(_store_and_compose, runtime, round_id, player_id, batch)
    stored = pending.stored
    facts = stored.facts
    state, score = stored.outcome or "playing", stored.score
    if pending.scorer is None or pending.model_input is None:
        last = runtime.answers.get(facts.round_id)
        answer = Answer(last.guesses if last else [], pending.revealed)
    else:
        stored_at = time.perf_counter()
        probs = await _classify(runtime, pending.scorer, pending.model_input)
        scored_at = time.perf_counter()
        store_ms, dnn_ms = (stored_at - started) * 1000, (scored_at - stored_at) * 1000
        response.headers["Server-Timing"] = f"store;dur={store_ms:.2f}, dnn;dur={dnn_ms:.2f}"
        hit = facts.class_index in {g.class_index for g in top_guesses(probs, facts.top_k)}
        if hit and state == "playing":
            state, score = await run_in_threadpool(
                _record_success, runtime, facts, stored.elapsed_ms
            )
        answer = Answer(_guesses(probs), pending.revealed)
        runtime.answers.put(facts.round_id, answer)
    return RevealOut(
        seq=batch.seq,
        duplicate=stored.duplicate,
        guesses=answer.guesses,
        state=state,
        score=score,
        elapsed_ms=stored.elapsed_ms,
        revealed_fraction=answer.revealed,
    )


@router.post("/rounds/{round_id}/start")
def show_round(
    round_id: DbId, session: DbSession, runtime: AppRuntime, player_id: PlayerId
) -> RoundClock:
    """The round's photo is on the player's screen: its clock starts (once)."""
    facts = round_facts(runtime, round_id, player_id)
    return service.show_round(
        session, facts, runtime.map_rules, runtime.settings.round_start_bound_s
    )


@router.post("/rounds/{round_id}/skip")
def skip_round(
    round_id: DbId, session: DbSession, runtime: AppRuntime, player_id: PlayerId
) -> RoundResult:
    return service.skip_round(session, round_id, player_id, runtime.map_rules)


@router.post("/rounds/{round_id}/finish")
def finish_round(
    round_id: DbId, session: DbSession, runtime: AppRuntime, player_id: PlayerId
) -> RoundResult:
    facts = round_facts(runtime, round_id, player_id)
    return service.finish_round(
        session, facts, runtime.map_rules, runtime.settings.round_start_bound_s
    )


@router.get("/rounds/{round_id}")
def read_round(
    round_id: DbId, session: DbSession, runtime: AppRuntime, player_id: PlayerId
) -> RoundResult:
    facts = round_facts(runtime, round_id, player_id)
    settings = runtime.settings
    return service.read_round(
        session, facts, settings.round_grace_ms, runtime.map_rules, settings.round_start_bound_s
    )


@router.get("/leaderboard")
def get_leaderboard(
    session: DbSession,
    runtime: AppRuntime,
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    campaign: Annotated[str | None, Query(max_length=100)] = None,
    clickme_player: Annotated[str | None, Cookie()] = None,
) -> Leaderboard:
    """The campaign's leaderboard (the demo campaign's, or none given: the global one)."""
    player_id = players.player_of_token(session, settings.resolved_secret_key(), clickme_player)
    campaign_id = campaigns.leaderboard_campaign_id(session, campaign)
    return runtime.leaderboard.read(session, player_id, limit, campaign_id)


admin_router = APIRouter(prefix="/api/admin/rounds", tags=["admin"])


@admin_router.get("/{round_id}/points")
def round_points(
    round_id: DbId, session: DbSession, settings: AppSettings, _staff: StaffMember
) -> RoundReplay:
    """Every point of the round in order (x, y in the photo's pixels, t in ms), with the photo's
    size and the brush it was played with."""
    return service.round_replay(session, round_id, settings.display_max_side)
