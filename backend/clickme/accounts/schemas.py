"""Staff API schemas."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel

from clickme.core.schemas import Text

Role = Literal["admin", "researcher"]
ROLES: tuple[str, ...] = ("admin", "researcher")
MIN_PASSWORD_LENGTH = 12

LoginEmail = Annotated[
    str, Text(strip_whitespace=True, to_lower=True, min_length=1, max_length=254)
]
Email = Annotated[
    str,
    Text(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$",
    ),
]
# The upper bound keeps one login from costing the server arbitrary hashing work.
LoginPassword = Annotated[str, Text(min_length=1, max_length=1024)]
NewPassword = Annotated[str, Text(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class LoginIn(BaseModel):
    email: LoginEmail
    password: LoginPassword


class StaffMe(BaseModel):
    email: str
    role: Role
    csrf_token: str


class StaffUserCreate(BaseModel):
    email: Email
    password: NewPassword
    role: Role


class StaffUserUpdate(BaseModel):
    role: Role | None = None
    disabled: bool | None = None


class StaffUserOut(BaseModel):
    id: int
    email: str
    role: Role
    disabled: bool
    created_at: datetime
