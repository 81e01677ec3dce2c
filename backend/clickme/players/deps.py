"""The players' dependencies: the signed-in player (from the signed cookie), the caller's
address hash, and the players' view of the runtime (rate limits; the player with their totals,
which the game above counts and the assembly supplies)."""

from typing import Annotated, Protocol

from fastapi import Cookie, Depends, Request
from sqlalchemy.orm import Session

from clickme.core.deps import AppSettings, DbSession, get_runtime
from clickme.core.errors import NotSignedIn
from clickme.players import service
from clickme.players.identity import PlayerToken, scope_ip_hash, verify_player_token
from clickme.players.models import Player
from clickme.players.ratelimit import GameLimits, RateLimiter
from clickme.players.schemas import PlayerOut
from clickme.scoring.deps import ScoringRuntime


class PlayersRuntime(ScoringRuntime, Protocol):
    @property
    def limiter(self) -> RateLimiter: ...

    @property
    def limits(self) -> GameLimits: ...

    def player_summary(self, session: Session, player: Player) -> PlayerOut:
        """The player with their total score and count of finished rounds."""
        ...


AppRuntime = Annotated[PlayersRuntime, Depends(get_runtime)]


def player_id_from_cookie(
    session: DbSession, runtime: AppRuntime, clickme_player: Annotated[str | None, Cookie()] = None
) -> int:
    """The signed player id from the cookie; 401 when there is none, it is forged, or it was
    signed before the player was forgotten. Checked in the request's own session (FastAPI
    gives the route the same one): no second session, connection and commit per request."""
    if clickme_player is None:
        raise NotSignedIn("no_player", "no player yet: accept the consent screen first")
    secret = runtime.settings.resolved_secret_key()
    player_id = service.player_of_token(session, secret, clickme_player)
    if player_id is None:
        raise NotSignedIn("no_player", "unknown player: accept the consent screen again")
    return player_id


PlayerId = Annotated[int, Depends(player_id_from_cookie)]


async def signed_player(
    runtime: AppRuntime, clickme_player: Annotated[str | None, Cookie()] = None
) -> PlayerToken:
    """The player id and token epoch the cookie is signed for, checked on the event loop (no
    database, no thread): the caller must check that the epoch is the player's current one.
    401 when there is no cookie or it is forged."""
    if clickme_player is None:
        raise NotSignedIn("no_player", "no player yet: accept the consent screen first")
    signed = verify_player_token(runtime.settings.resolved_secret_key(), clickme_player)
    if signed is None:
        raise NotSignedIn("no_player", "unknown player: accept the consent screen again")
    return signed


SignedPlayer = Annotated[PlayerToken, Depends(signed_player)]


def current_player(session: DbSession, player_id: PlayerId) -> Player:
    player = service.get_player(session, player_id)
    if player is None:
        raise NotSignedIn("no_player", "unknown player: accept the consent screen again")
    return player


CurrentPlayer = Annotated[Player, Depends(current_player)]


async def client_ip_hash(request: Request, settings: AppSettings) -> str:
    """The caller's address as kept and rate-limited (``scope_ip_hash``)."""
    return scope_ip_hash(settings.resolved_secret_key(), request.scope)


IpHash = Annotated[str, Depends(client_ip_hash)]
