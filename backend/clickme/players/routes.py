"""Player routes: create (after consent), read and rename oneself."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from clickme.core.deps import DbSession
from clickme.core.errors import Unprocessable
from clickme.players import service
from clickme.players.deps import AppRuntime, CurrentPlayer, IpHash
from clickme.players.identity import COOKIE_MAX_AGE_S, PLAYER_COOKIE, sign_player_token
from clickme.players.ratelimit import enforce
from clickme.players.recruitment import parse_recruitment
from clickme.players.schemas import PlayerCreate, PlayerOut, PlayerUpdate

router = APIRouter(prefix="/api/players", tags=["players"])


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
        raise Unprocessable("consent_required", "playing requires consent")
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
    return runtime.player_summary(session, player)


@router.get("/me")
def read_me(session: DbSession, runtime: AppRuntime, player: CurrentPlayer) -> PlayerOut:
    return runtime.player_summary(session, player)


@router.patch("/me")
def update_me(
    body: PlayerUpdate, session: DbSession, runtime: AppRuntime, player: CurrentPlayer
) -> PlayerOut:
    service.rename_player(session, player, body.display_name)
    return runtime.player_summary(session, player)
