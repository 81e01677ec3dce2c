"""Player routes: create (after consent), read and rename oneself."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Request, Response
from fastapi.responses import JSONResponse

from clickme.core.deps import AppRuntime, AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.players import service
from clickme.players.identity import (
    COOKIE_MAX_AGE_S,
    PLAYER_COOKIE,
    PlayerToken,
    hash_ip,
    sign_player_token,
    verify_player_token,
)
from clickme.players.models import Player
from clickme.players.ratelimit import enforce
from clickme.players.recruitment import parse_recruitment
from clickme.players.schemas import PlayerCreate, PlayerOut, PlayerUpdate

router = APIRouter(prefix="/api/players", tags=["players"])


def player_id_from_cookie(
    runtime: AppRuntime, clickme_player: Annotated[str | None, Cookie()] = None
) -> int:
    """The signed player id from the cookie; 401 when there is none, it is forged, or it was
    signed before the player was forgotten."""
    if clickme_player is None:
        raise ClickmeError(401, "no_player", "no player yet: accept the consent screen first")
    secret = runtime.settings.resolved_secret_key()
    with runtime.database.session() as session:
        player_id = service.player_of_token(session, secret, clickme_player)
    if player_id is None:
        raise ClickmeError(401, "no_player", "unknown player: accept the consent screen again")
    return player_id


PlayerId = Annotated[int, Depends(player_id_from_cookie)]


async def signed_player(
    runtime: AppRuntime, clickme_player: Annotated[str | None, Cookie()] = None
) -> PlayerToken:
    """The player id and token epoch the cookie is signed for, checked on the event loop (no
    database, no thread): the caller must check that the epoch is the player's current one.
    401 when there is no cookie or it is forged."""
    if clickme_player is None:
        raise ClickmeError(401, "no_player", "no player yet: accept the consent screen first")
    signed = verify_player_token(runtime.settings.resolved_secret_key(), clickme_player)
    if signed is None:
        raise ClickmeError(401, "no_player", "unknown player: accept the consent screen again")
    return signed


SignedPlayer = Annotated[PlayerToken, Depends(signed_player)]


def current_player(session: DbSession, player_id: PlayerId) -> Player:
    player = service.get_player(session, player_id)
    if player is None:
        raise ClickmeError(401, "no_player", "unknown player: accept the consent screen again")
    return player


CurrentPlayer = Annotated[Player, Depends(current_player)]


async def client_ip_hash(request: Request, settings: AppSettings) -> str:
    """The caller's address as kept and rate-limited: a salted hash, never the address."""
    return hash_ip(settings.resolved_secret_key(), request.client.host if request.client else "")


IpHash = Annotated[str, Depends(client_ip_hash)]


@router.post("", status_code=201, response_model=PlayerOut)
def create_player(
    body: PlayerCreate,
    session: DbSession,
    runtime: AppRuntime,
    ip_hash: IpHash,
    request: Request,
    response: Response,
) -> PlayerOut | JSONResponse:
    """A new player after consent, or the same one for a returning recruited participant (200);
    an MTurk preview creates nobody."""
    if body.recruitment_params().is_mturk_preview():
        return JSONResponse({"preview": True})
    if not body.consent:
        raise ClickmeError(422, "consent_required", "playing requires consent")
    recruitment = parse_recruitment(body.recruitment_params())
    enforce(runtime.limiter, runtime.limits.players_per_ip, ip_hash)
    player, created = service.create_player(
        session, recruitment, ip_hash, request.headers.get("user-agent")
    )
    response.status_code = 201 if created else 200
    # Over HTTPS the game may be shown in a cross-site frame (MTurk): the cookie must be sent
    # there, kept in the frame's own partition (CHIPS), so browsers that block third-party
    # cookies keep it too. Over plain HTTP (the demo) SameSite=None is not allowed: Lax.
    https = request.url.scheme == "https" or runtime.settings.environment == "production"
    response.set_cookie(
        PLAYER_COOKIE,
        sign_player_token(runtime.settings.resolved_secret_key(), player.id, player.token_epoch),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="none" if https else "lax",
        secure=https,
    )
    if https:  # Starlette writes Partitioned only on Python 3.14+: added to the header here
        name, value = response.raw_headers[-1]
        response.raw_headers[-1] = (name, value + b"; Partitioned")
    return service.player_summary(session, player)


@router.get("/me")
def read_me(session: DbSession, player: CurrentPlayer) -> PlayerOut:
    return service.player_summary(session, player)


@router.patch("/me")
def update_me(body: PlayerUpdate, session: DbSession, player: CurrentPlayer) -> PlayerOut:
    service.rename_player(session, player, body.display_name)
    return service.player_summary(session, player)
