"""Game routes: start a round, send painted points (the live reveal), skip, finish, leaderboard;
and the staff's replay of a round's painted points."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Query, Response, WebSocket
from sqlalchemy.orm import Session

from clickme.accounts.deps import StaffMember
from clickme.campaigns import service as campaigns
from clickme.core.deps import AppSettings, DbSession
from clickme.core.schemas import DbId
from clickme.game import reveal, service, starts
from clickme.game.deps import AppRuntime, GameRuntime
from clickme.game.fast_path import revealed_response
from clickme.game.schemas import (
    Leaderboard,
    PointBatchIn,
    RevealOut,
    RoundClock,
    RoundCreate,
    RoundOut,
    RoundReplay,
    RoundResult,
)
from clickme.game.strokes_socket import serve_strokes
from clickme.game.threads import as_player, in_session, off_loop
from clickme.players import service as players
from clickme.players.deps import IpHash, SignedPlayer

router = APIRouter(prefix="/api", tags=["game"])


async def admitted(body: RoundCreate, runtime: AppRuntime) -> str:
    """The campaign slug a new round is asked in (``starts.admitted``)."""
    return starts.admitted(runtime, body)


@router.post("/rounds", status_code=201)
async def start_round(
    slug: Annotated[str, Depends(admitted)],
    body: RoundCreate,
    runtime: AppRuntime,
    player: SignedPlayer,
    ip_hash: IpHash,
) -> RoundOut:
    """A new round and its photo (sized for the screen); its clock waits for the photo. Not
    while the campaign's DNN is saturated (``reveal.admit_new_round``). A signed request with a
    well-formed body is answered by ``clickme.game.fast_path`` before it gets here."""
    return await off_loop(runtime, lambda: starts.new_round(runtime, slug, body, player, ip_hash))


@router.post("/rounds/{round_id}/points", response_model=RevealOut)
async def post_points(
    round_id: DbId, batch: PointBatchIn, runtime: AppRuntime, player: SignedPlayer
) -> Response:
    """Store the batch and answer with the DNN's guesses (``clickme.game.reveal``); a
    well-formed batch is answered by ``clickme.game.fast_path`` before it gets here."""
    return revealed_response(await reveal.reveal(runtime, round_id, player, batch))


@router.websocket("/strokes")
async def strokes(websocket: WebSocket) -> None:
    """The player's batches of points over one WebSocket, each answered as ``post_points``
    answers it (``clickme.game.strokes_socket``)."""
    await serve_strokes(websocket, websocket.app.state.runtime)


@router.post("/rounds/{round_id}/start")
async def show_round(round_id: DbId, runtime: AppRuntime, player: SignedPlayer) -> RoundClock:
    """The round's photo is on the player's screen: its clock starts (once); a signed request
    is answered by ``clickme.game.fast_path`` before it gets here (``starts.start_clock``)."""
    return await off_loop(runtime, lambda: starts.start_clock(runtime, round_id, player))


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
