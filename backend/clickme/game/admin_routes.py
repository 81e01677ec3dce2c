"""Staff route: a round's painted points, to replay its strokes over the photo."""

from fastapi import APIRouter

from clickme.accounts.deps import StaffMember
from clickme.core.deps import AppSettings, DbSession
from clickme.core.schemas import DbId
from clickme.game.schemas import RoundReplay
from clickme.game.service import round_replay

router = APIRouter(prefix="/api/admin/rounds", tags=["admin"])


@router.get("/{round_id}/points")
def round_points(
    round_id: DbId, session: DbSession, settings: AppSettings, _staff: StaffMember
) -> RoundReplay:
    """Every point of the round in order (x, y in the photo's pixels, t in ms), with the photo's
    size and the brush it was played with."""
    return round_replay(session, round_id, settings.display_max_side)
