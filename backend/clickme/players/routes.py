"""Player routes: create (after consent), read and rename oneself."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Response

from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.players import service
from clickme.players.identity import (
    COOKIE_MAX_AGE_S,
    PLAYER_COOKIE,
    sign_player_id,
    verify_player_token,
)
from clickme.players.models import Player
from clickme.players.schemas import PlayerCreate, PlayerOut, PlayerUpdate

router = APIRouter(prefix="/api/players", tags=["players"])


async def player_id_from_cookie(
    settings: AppSettings, clickme_player: Annotated[str | None, Cookie()] = None
) -> int:
    """The signed player id from the cookie; 401 when there is none or it is forged."""
    player_id = verify_player_token(settings.resolved_secret_key(), clickme_player)
    if player_id is None:
        raise ClickmeError(401, "no_player", "no player yet: accept the consent screen first")
    return player_id


PlayerId = Annotated[int, Depends(player_id_from_cookie)]


def current_player(session: DbSession, player_id: PlayerId) -> Player:
    player = service.get_player(session, player_id)
    if player is None:
        raise ClickmeError(401, "no_player", "unknown player: accept the consent screen again")
    return player


CurrentPlayer = Annotated[Player, Depends(current_player)]


@router.post("", status_code=201)
def create_player(
    body: PlayerCreate, session: DbSession, settings: AppSettings, response: Response
) -> PlayerOut:
    if not body.consent:
        raise ClickmeError(422, "consent_required", "playing requires consent")
    player = service.create_player(session)
    response.set_cookie(
        PLAYER_COOKIE,
        sign_player_id(settings.resolved_secret_key(), player.id),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
    )
    return service.player_summary(session, player)


@router.get("/me")
def read_me(session: DbSession, player: CurrentPlayer) -> PlayerOut:
    return service.player_summary(session, player)


@router.patch("/me")
def update_me(body: PlayerUpdate, session: DbSession, player: CurrentPlayer) -> PlayerOut:
    service.rename_player(session, player, body.display_name)
    return service.player_summary(session, player)
