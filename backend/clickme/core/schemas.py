"""Input types shared by every domain's schemas and routes."""

import unicodedata
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, StringConstraints

ALLOWED_CONTROL = frozenset("\t\n\r")
MAX_DB_ID = 2**31 - 1


def no_control_characters(value: str) -> str:
    """Refuse NUL, other control characters and lone surrogates (no database stores them)."""
    for character in value:
        category = unicodedata.category(character)
        if (category == "Cc" and character not in ALLOWED_CONTROL) or category == "Cs":
            raise ValueError(f"text must not contain the character U+{ord(character):04X}")
    return value


def text(**constraints: Any) -> Any:
    """A text field's type: its StringConstraints (applied first), then no control characters."""
    return Annotated[str, StringConstraints(**constraints), AfterValidator(no_control_characters)]


DbId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
"""A row id in a path: out-of-range ids are a 422, never a database error."""
