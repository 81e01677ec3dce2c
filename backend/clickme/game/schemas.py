"""Game API schemas."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from clickme.core.schemas import MAX_DB_ID
from clickme.game.outcomes import Outcome

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Point = tuple[FiniteFloat, FiniteFloat, Annotated[int, Field(ge=0, le=3_600_000)]]
PointerType = Literal["mouse", "touch", "pen"]


class RoundCreate(BaseModel):
    campaign: str | None = Field(default=None, max_length=100)
    viewport_width: int | None = Field(default=None, ge=1, le=20000)
    viewport_height: int | None = Field(default=None, ge=1, le=20000)


class ImageRef(BaseModel):
    id: int
    url: str
    width: int
    height: int


class Brush(BaseModel):
    radius_px: float
    softness: float


class RoundReplay(BaseModel):
    """A round's points for staff to replay: (x, y, t) in the order painted."""

    round_id: int
    image: ImageRef
    brush: Brush
    time_limit_ms: int
    outcome: str | None
    points: list[tuple[float, float, int]]


class RoundOut(BaseModel):
    round_id: int
    campaign: str
    image: ImageRef
    class_name: str
    class_label: str  # as the player is shown it, with its synonyms: "mouse, computer mouse"
    time_limit_ms: int
    top_k: int
    brush: Brush
    start_within_ms: int = Field(description="say the photo is shown by then, or it is abandoned")
    repeat: bool = Field(
        default=False, description="a replay of a photo already seen: played for fun, not counted"
    )


class RoundClock(BaseModel):
    """A round's clock once its photo is shown: it ends ``time_limit_ms`` after the start."""

    round_id: int
    time_limit_ms: int
    elapsed_ms: int
    display_ms: int = Field(description="from the round's creation to its photo on screen")


class PointBatchIn(BaseModel):
    seq: int = Field(ge=1, le=1_000_000)
    points: list[Point] = Field(min_length=1)
    pointer_type: PointerType | None = None


class StrokeBatchIn(PointBatchIn):
    """A batch of points over the strokes' socket (``game.strokes_socket``): ``PointBatchIn``
    and its round."""

    round_id: int = Field(ge=1, le=MAX_DB_ID)


class GuessOut(BaseModel):
    class_index: int
    name: str
    probability: float


class RevealOut(BaseModel):
    seq: int
    duplicate: bool
    guesses: list[GuessOut]
    state: Literal["playing"] | Outcome
    score: int
    elapsed_ms: int
    revealed_fraction: float


class RoundResult(BaseModel):
    round_id: int
    outcome: Outcome | None
    score: int
    elapsed_ms: int
    class_name: str
    total_score: int


class LeaderboardEntry(BaseModel):
    rank: int
    display_name: str
    score: int
    rounds: int
    is_me: bool


class Leaderboard(BaseModel):
    top: list[LeaderboardEntry]
    me: LeaderboardEntry | None
