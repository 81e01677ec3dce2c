"""Player API schemas."""

from typing import Annotated

from pydantic import BaseModel, StringConstraints

DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^<>]+$")
]


class PlayerCreate(BaseModel):
    consent: bool


class PlayerUpdate(BaseModel):
    display_name: DisplayName


class PlayerOut(BaseModel):
    id: int
    display_name: str
    total_score: int
    rounds_played: int
