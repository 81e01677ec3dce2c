"""Game routes: start a round, send painted points (the live reveal), skip, finish, leaderboard;
and the staff's replay of a round's painted points."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Query, Response
from sqlalchemy.orm import Session

from clickme.accounts.deps import StaffMember
from clickme.campaigns import service as campaigns
from clickme.core.deps import AppSettings, DbSession
from clickme.core.schemas import DbId
from clickme.game import reveal, service
from clickme.game.deps import AppRuntime, GameRuntime
from clickme.game.fast_path import revealed_response
from clickme.game.schemas import (
    Brush,
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
from clickme.game.threads import as_player, in_session, off_loop
from clickme.images.display import display_url
from clickme.images.labels import class_name, class_names_shown
from clickme.players import service as players
from clickme.players.deps import IpHash, SignedPlayer
from clickme.players.identity import PlayerToken
from clickme.players.ratelimit import enforce

router = APIRouter(prefix="/api", tags=["game"])


async def admitted(body: RoundCreate, runtime: AppRuntime) -> str:
    """The campaign slug a new round is asked in, refused first thing (before the player is
    read) while its DNN is saturated, when this process knows which DNN that is."""
    slug = body.campaign or campaigns.DEFAULT_CAMPAIGN_SLUG
    reveal.admit_new_round_early(runtime, slug)
    return slug


@router.post("/rounds", status_code=201)
async def start_round(
    slug: Annotated[str, Depends(admitted)],
    body: RoundCreate,
    runtime: AppRuntime,
    player: SignedPlayer,
    ip_hash: IpHash,
) -> RoundOut:
    """A new round and its photo (sized for the screen); its clock waits for the photo. Not
    while the campaign's DNN is saturated (``reveal.admit_new_round``)."""
    return await off_loop(
        runtime, lambda: in_session(runtime, _new_round, runtime, slug, body, player, ip_hash)
    )


def _new_round(
    session: Session,
    runtime: GameRuntime,
    slug: str,
    body: RoundCreate,
    player: PlayerToken,
    ip_hash: str,
) -> RoundOut:
    """Whose first query checks the cookie's token epoch (``service.campaign_for_player``)."""
    found = service.campaign_for_player(session, player.player_id, player.epoch, slug)
    enforce(runtime.limiter, runtime.limits.rounds_per_ip, ip_hash)
    campaign, model = campaigns.playable(slug, *found)  # model held: get_campaign_with_model
    reveal.admit_new_round_of(runtime, slug, model.name)
    round_, image = service.start_round(
        session,
        player.player_id,
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


@router.post("/rounds/{round_id}/points", response_model=RevealOut)
async def post_points(
    round_id: DbId, batch: PointBatchIn, runtime: AppRuntime, player: SignedPlayer
) -> Response:
    """Store the batch and answer with the DNN's guesses (``clickme.game.reveal``); a
    well-formed batch is answered by ``clickme.game.fast_path`` before it gets here."""
    return revealed_response(await reveal.reveal(runtime, round_id, player, batch))


@router.post("/rounds/{round_id}/start")
async def show_round(round_id: DbId, runtime: AppRuntime, player: SignedPlayer) -> RoundClock:
    """The round's photo is on the player's screen: its clock starts (once); a signed request
    is answered by ``clickme.game.fast_path`` before it gets here (``reveal.start_clock``)."""
    return await off_loop(runtime, lambda: reveal.start_clock(runtime, round_id, player))


@router.post("/rounds/{round_id}/skip")
async def skip_round(round_id: DbId, runtime: AppRuntime, player: SignedPlayer) -> RoundResult:
    """The player gives up on the round (no score); its cookie checked in the round's query."""
    return await off_loop(
        runtime,
        lambda: in_session(
            runtime, service.skip_round, round_id, player.player_id, player.epoch, runtime.map_rules
        ),
    )


@router.post("/rounds/{round_id}/finish")
async def finish_round(round_id: DbId, runtime: AppRuntime, player: SignedPlayer) -> RoundResult:
    return await as_player(runtime, player, _finish_round, runtime, round_id, player.player_id)


def _finish_round(
    session: Session, runtime: GameRuntime, round_id: int, player_id: int
) -> RoundResult:
    facts = reveal.round_facts(runtime, round_id, player_id, session)
    return service.finish_round(
        session, facts, runtime.map_rules, runtime.settings.round_start_bound_s
    )


@router.get("/rounds/{round_id}")
async def read_round(round_id: DbId, runtime: AppRuntime, player: SignedPlayer) -> RoundResult:
    return await as_player(runtime, player, _read_round, runtime, round_id, player.player_id)


def _read_round(
    session: Session, runtime: GameRuntime, round_id: int, player_id: int
) -> RoundResult:
    facts = reveal.round_facts(runtime, round_id, player_id, session)
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
