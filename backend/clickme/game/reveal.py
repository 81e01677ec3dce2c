"""The reveal pipeline: a painted batch stored once, what the DNN sees, and its guesses.

Per reveal: the cookie's signature is checked on the event loop; one thread hop then counts the
batch against the rate limit, stores it (a conditional UPDATE that also checks the cookie's token
epoch and an INSERT, without the ORM session: one statement on PostgreSQL) and, with in-process
scoring, grows the round's mask by the new bubbles only (the box they touch), recomposes only
that box of what the DNN sees and re-adds only its rows to the share revealed; with scoring
workers, the worker composes from the view (photo, rule, points) instead. The same thread then
sends it to the DNN's scorer, and the event loop is woken once, when the DNN has answered. The
answer is encoded once with orjson.

Past saturation a reveal is refused with 503 ``scorer_busy`` before any work is spent on it
(nothing stored: the client sends the same batch again) when the scorer could not answer it
before its deadline.
"""

import asyncio
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from typing import cast

import numpy as np
from sqlalchemy.orm import Session

from clickme.core.errors import NotFound
from clickme.core.futures import Reply
from clickme.game import service
from clickme.game.deps import GameRuntime as Runtime
from clickme.game.live import Answer, Drawn, LiveReveal
from clickme.game.points import xy_of
from clickme.game.schemas import PointBatchIn
from clickme.game.threads import off_loop, settled_off_loop
from clickme.images.labels import class_name
from clickme.players.identity import PlayerToken
from clickme.players.ratelimit import enforce
from clickme.scoring.remote import RedisScorer, Scored, ViewAnswer
from clickme.scoring.reveal import (
    PreparedImage,
    RevealView,
    compose,
    compose_region,
    grow_mask,
    nothing_revealed,
    render_mask,
    revealed_fraction,
    row_sums,
)
from clickme.scoring.scorer import Guess, Scorer, ScorerBusyError, top_guesses

SHOWN_GUESSES = 5
# A new round refused for a saturated DNN is asked for again after this (the page adds a random
# second, so that refused players do not all come back at once).
NEW_ROUND_RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Pending:
    """A new batch, stored: the share it reveals (None for a view: the worker that draws it
    reports it) and, unless it repeats one (nothing to score), what the DNN is to see, and
    once sent, its answer to come."""

    stored: service.StoredBatch
    revealed: float | None
    scorer: Scorer | None = None
    model_input: np.ndarray | RevealView | None = None
    answer: Future[np.ndarray] | Future[Scored] | None = None
    stored_at: float = 0.0  # time.perf_counter() once stored


@dataclass(frozen=True)
class Revealed:
    """The reveal's answer (as ``RevealOut`` has it) and its Server-Timing, when scored."""

    body: dict
    server_timing: str | None


def round_facts(
    runtime: Runtime, round_id: int, player_id: int, session: Session | None = None
) -> service.RoundFacts:
    """The round's fixed facts, cached in this process once its clock runs (else read in the
    given session, or in one of their own); 404 unless it is this player's."""
    facts = runtime.rounds.get(round_id)
    if facts is None:
        facts = _load_facts(runtime, round_id, player_id, session)
        keep_facts(runtime, facts)
    if facts.player_id != player_id:
        raise NotFound("round_not_found", f"no round {round_id} for this player")
    return facts


def _load_facts(
    runtime: Runtime, round_id: int, player_id: int, session: Session | None
) -> service.RoundFacts:
    if session is not None:
        return service.load_facts(session, round_id, player_id)
    with runtime.database.session() as own:
        return service.load_facts(own, round_id, player_id)


def keep_facts(runtime: Runtime, facts: service.RoundFacts) -> None:
    """Caches facts whose clock has started (before, ``shown_at`` may still change)."""
    if facts.shown_at is not None:
        runtime.rounds.put(facts.round_id, facts)


def _prepared(runtime: Runtime, facts: service.RoundFacts) -> PreparedImage:
    return runtime.images.get(runtime.settings.images_dir / facts.image_file, facts.rule)


def _points_so_far(runtime: Runtime, round_id: int, seq: int) -> np.ndarray:
    with runtime.database.session() as session:
        return xy_of(service.round_points(session, round_id, seq))


def _grown(runtime: Runtime, stored: service.StoredBatch, draw: bool) -> LiveReveal:
    """The round's reveal after this (new) batch: every point so far (the previous batch's
    kept in memory and the new ones, or, when this process has not seen the previous batch, all
    read back). With ``draw`` (in-process scoring), its mask and what the DNN sees too: grown by
    the new bubbles only, in the box they touch, or drawn whole from all points."""
    facts = stored.facts
    live = runtime.masks.get(facts.round_id)
    new_points = xy_of(stored.points)
    if stored.seq > 1 and (live is None or live.seq != stored.seq - 1):
        points = _points_so_far(runtime, facts.round_id, stored.seq)
        grown = LiveReveal(stored.seq, points)
        if draw:
            grown = _drawn(runtime, facts, grown)
    else:
        points = new_points if live is None else np.concatenate([live.points, new_points])
        grown = LiveReveal(stored.seq, points)
        if draw:
            grown = _grown_by(runtime, facts, live, grown, new_points)
    if stored.outcome is None:
        runtime.masks.put(facts.round_id, grown)
    else:
        runtime.masks.pop(facts.round_id)
    return grown


def _drawn(runtime: Runtime, facts: service.RoundFacts, grown: LiveReveal) -> LiveReveal:
    """``grown`` with its mask (and its row sums) and image drawn whole from its points."""
    prepared = _prepared(runtime, facts)
    mask = render_mask(grown.points, prepared, facts.rule)
    return replace(grown, drawn=Drawn(mask, row_sums(mask), compose(prepared, mask), prepared))


def _grown_by(
    runtime: Runtime,
    facts: service.RoundFacts,
    previous: LiveReveal | None,
    grown: LiveReveal,
    new_points: np.ndarray,
) -> LiveReveal:
    """``grown`` with the previous batch's mask, row sums and image grown by the new points'
    bubbles, only in the box they touch, from the prepared photo kept with them (its lookup,
    a path and a cache key, cost about 60 µs after a pause); for the round's first batch, from
    nothing revealed (drawing the whole crop cost about 1 ms more); drawn whole when the
    previous batch's were not kept."""
    if previous is None:
        prepared = _prepared(runtime, facts)
        drawn = Drawn(*nothing_revealed(prepared), prepared)
    elif previous.drawn is None:
        return _drawn(runtime, facts, grown)
    else:
        drawn = previous.drawn
    mask, sums, image, prepared = drawn
    region = grow_mask(mask, new_points, prepared, facts.rule)
    sums[region.top : region.bottom] = row_sums(mask[region.top : region.bottom])
    compose_region(prepared, mask, image, region)
    return replace(grown, drawn=drawn)


def _store(runtime: Runtime, round_id: int, player: PlayerToken, batch: PointBatchIn) -> Pending:
    """The reveal's one thread hop: count the batch against the player's rate limit, commit
    it, then grow what the DNN sees (nothing for a repeat; only the points when a scoring
    worker draws it)."""
    enforce(runtime.limiter, runtime.limits.reveals_per_player, str(player.player_id))
    settings = runtime.settings
    facts = round_facts(runtime, round_id, player.player_id)
    rules = service.BatchRules(
        settings.max_points_per_batch,
        settings.round_grace_ms,
        runtime.map_rules,
        settings.round_start_bound_s,
        settings.strokes_synchronous_commit,
    )
    stored = service.store_any_batch(runtime.database, facts, batch, rules, player.epoch)
    if stored.facts is not facts:
        keep_facts(runtime, stored.facts)
    if stored.duplicate:
        return Pending(stored, _last_answer(runtime, stored).revealed)
    scorer = runtime.scorer_for(facts.model_name)
    if isinstance(scorer, RedisScorer):  # the worker draws the view, and reports its share
        live = _grown(runtime, stored, draw=False)
        view = RevealView(facts.image_file, facts.rule, live.points)
        return Pending(stored, None, scorer, view)
    live = _grown(runtime, stored, draw=True)
    drawn = cast(Drawn, live.drawn)
    revealed = revealed_fraction(drawn.mask, drawn.sums)
    # a copy: the next batch grows the kept image while this one may still wait
    return Pending(stored, revealed, scorer, drawn.image.copy())


def _last_answer(runtime: Runtime, stored: service.StoredBatch) -> Answer:
    """The round's last answer (kept by the process that gave it); elsewhere no guesses and
    the share revealed by the stored points up to the repeated batch."""
    answer = runtime.answers.get(stored.facts.round_id)
    if answer is not None:
        return answer
    facts = stored.facts
    points = _points_so_far(runtime, facts.round_id, stored.seq)
    return Answer([], revealed_fraction(render_mask(points, _prepared(runtime, facts), facts.rule)))


def _record_success(runtime: Runtime, facts: service.RoundFacts, elapsed: int) -> tuple[str, int]:
    """The round won: one statement without a session (``record_success_now``) unless the win
    gives its play back or another request ended the round first."""
    runtime.masks.pop(facts.round_id)
    rule = runtime.map_rules
    won = service.record_success_now(runtime.database, facts, elapsed, rule)
    if won is not None:
        return won
    with runtime.database.session() as session:
        return service.record_success(session, facts, elapsed, rule)


def _guesses(guesses: list[Guess]) -> list[dict]:
    return [
        {
            "class_index": g.class_index,
            "name": class_name(g.class_index),
            "probability": g.probability,
        }
        for g in guesses
    ]


def _store_and_send(
    runtime: Runtime, round_id: int, player: PlayerToken, batch: PointBatchIn, reply: Reply[Pending]
) -> None:
    """The reveal's one thread hop: ``_store``, then what the DNN is to see sent from here;
    ``reply`` answers once the DNN does (at once when there is nothing to score)."""
    pending = _store(runtime, round_id, player, batch)
    if pending.scorer is None or pending.model_input is None:
        reply(pending)
        return
    stored_at = time.perf_counter()
    answer: Future[np.ndarray] | Future[Scored]
    if isinstance(pending.model_input, RevealView):  # made for a RedisScorer (``_store``)
        answer = cast(RedisScorer, pending.scorer).send_view(pending.model_input)
    else:
        answer = pending.scorer.send(pending.model_input)
    sent = replace(pending, answer=answer, stored_at=stored_at)
    reply.cancels(answer)
    answer.add_done_callback(lambda _: reply(sent))


async def _stored_and_answered(
    runtime: Runtime, round_id: int, player: PlayerToken, batch: PointBatchIn
) -> Pending:
    """The batch stored and the DNN's answer in (``_store_and_send``, the event loop woken once
    for both); a clear 503 when it does not come in time."""
    work = partial(_store_and_send, runtime, round_id, player, batch)
    try:  # a deadline on this task, not wait_for's extra task (and its extra loop turn)
        async with asyncio.timeout(runtime.settings.scorer_timeout_ms / 1000):
            return await settled_off_loop(runtime, work)
    except TimeoutError as exc:
        raise ScorerBusyError() from exc


def _probabilities_and_share(answer: np.ndarray | ViewAnswer) -> tuple[np.ndarray, float | None]:
    """The DNN's probabilities and, for a view a worker drew, the share it reveals (None if that
    worker does not report it)."""
    if isinstance(answer, ViewAnswer):
        return answer.probs, answer.revealed
    return answer, None


def _share_of(runtime: Runtime, facts: service.RoundFacts, view: RevealView) -> float:
    """The share the view reveals, drawn here, on the event loop: only while an older worker,
    which does not report it, answers (mid-upgrade)."""
    return revealed_fraction(render_mask(view.points, _prepared(runtime, facts), facts.rule))


def _waits_over(runtime: Runtime, model_name: str, limit_ms: int) -> bool:
    """Whether a request queued now for the model's scorer (if running) would wait longer."""
    scorer = runtime.running_scorer(model_name)
    return scorer is not None and scorer.expected_wait_s() > limit_ms / 1000


def shed_if_saturated(runtime: Runtime, round_id: int) -> None:
    """503 ``scorer_busy`` at once, before the batch is stored, when the round's scorer (if
    running) already has more waiting than it can answer within the scorer timeout."""
    facts = runtime.rounds.get(round_id)
    name = facts.model_name if facts is not None else runtime.scorer.spec.name
    if _waits_over(runtime, name, runtime.settings.scorer_timeout_ms):
        raise ScorerBusyError()


def admit_new_round_early(runtime: Runtime, slug: str) -> None:
    """``admit_new_round`` before anything else (the player, the database) when this process
    has started a round of the campaign before and so knows its DNN: refusing a crowd costs
    next to nothing."""
    model_name = runtime.campaign_models.get(slug)
    if model_name is not None:
        admit_new_round(runtime, model_name)


def admit_new_round_of(runtime: Runtime, slug: str, model_name: str) -> None:
    """Once the campaign is read: ``admit_new_round`` for its DNN unless the early check
    already checked that one (a DNN this process did not know yet, or changed since, is
    remembered for the next early check)."""
    if runtime.campaign_models.get(slug) != model_name:
        runtime.campaign_models.put(slug, model_name)
        admit_new_round(runtime, model_name)


def admit_new_round(runtime: Runtime, model_name: str) -> None:
    """503 ``scorer_busy`` before a new round is made while its DNN's reveals would wait over
    ``round_start_max_wait_ms``: the players already in a round keep prompt answers (a round
    started then would play its 7 seconds with answers a second late: unfair), and past
    saturation each answer no longer carries more round starts and finishes; the newcomer's
    page asks again in a moment."""
    limit_ms = runtime.settings.round_start_max_wait_ms
    if limit_ms and _waits_over(runtime, model_name, limit_ms):
        message = "the DNN partner is busy with other players: a new image shortly"
        raise ScorerBusyError(message, retry_after_s=NEW_ROUND_RETRY_AFTER_S)


async def reveal(
    runtime: Runtime, round_id: int, player: PlayerToken, batch: PointBatchIn
) -> Revealed:
    """Store the batch and answer with the DNN's guesses. The DNN runs at most once per batch:
    a repeated batch is answered from what was decided (the round's state and score, the
    guesses of its last answer) and never reaches the scorer."""
    shed_if_saturated(runtime, round_id)
    started = time.perf_counter()
    pending = await _stored_and_answered(runtime, round_id, player, batch)
    stored = pending.stored
    facts = stored.facts
    state, score = stored.outcome or "playing", stored.score
    timing = None
    if pending.answer is None:
        last = runtime.answers.get(facts.round_id)
        answer = Answer(last.guesses if last else [], cast(float, pending.revealed))
    else:
        scored_at = time.perf_counter()
        probs, shared = _probabilities_and_share(pending.answer.result())
        revealed = shared if shared is not None else pending.revealed
        if revealed is None:
            revealed = _share_of(runtime, facts, cast(RevealView, pending.model_input))
        store_ms = (pending.stored_at - started) * 1000
        dnn_ms = (scored_at - pending.stored_at) * 1000
        timing = f"store;dur={store_ms:.2f}, dnn;dur={dnn_ms:.2f}"
        ranked = top_guesses(probs, max(facts.top_k, SHOWN_GUESSES))  # ranked once, for both
        hit = facts.class_index in {g.class_index for g in ranked[: facts.top_k]}
        if hit and state == "playing":
            state, score = await off_loop(
                runtime, partial(_record_success, runtime, facts, stored.elapsed_ms)
            )
        answer = Answer(_guesses(ranked[:SHOWN_GUESSES]), revealed)
        runtime.answers.put(facts.round_id, answer)
    body = {
        "seq": batch.seq,
        "duplicate": stored.duplicate,
        "guesses": answer.guesses,
        "state": state,
        "score": score,
        "elapsed_ms": stored.elapsed_ms,
        "revealed_fraction": answer.revealed,
    }
    return Revealed(body, timing)
