"""Input types shared by every domain's schemas and routes."""

import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator, StringConstraints

ALLOWED_CONTROL = frozenset("\t\n\r")
MAX_DB_ID = 2**31 - 1


def no_control_characters(value: str) -> str:
    """Refuse NUL, other control characters and lone surrogates (no database stores them)."""
    for character in value:
        category = unicodedata.category(character)
        if (category == "Cc" and character not in ALLOWED_CONTROL) or category == "Cs":
            raise ValueError(f"text must not contain the character U+{ord(character):04X}")
    return value


class Text(GroupedMetadata):
    """A text field's checks, as ``Annotated[str, Text(...)]``: its StringConstraints (applied
    first), then no control characters."""

    def __init__(self, **constraints: Any) -> None:
        self.constraints = StringConstraints(**constraints)

    def __iter__(self) -> Iterator[object]:
        yield from self.constraints
        yield AfterValidator(no_control_characters)


# In text that other people see: controls (CR, LF, TAB, ...), format characters (bidi overrides,
# zero-width characters, the BOM), line and paragraph separators, and lone surrogates.
REFUSED_IN_SHOWN_TEXT = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _normalised(value: Any, multiline: bool) -> Any:
    """NFKC (one form for look-alike characters), line breaks as LF in multi-line text."""
    if not isinstance(value, str):
        return value
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFKC", value)


def _refuse_hidden_characters(value: str, multiline: bool) -> str:
    for character in value:
        if character == "\n" and multiline:
            continue
        if unicodedata.category(character) in REFUSED_IN_SHOWN_TEXT:
            raise ValueError(f"text must not contain the character U+{ord(character):04X}")
    return value


class ShownText(GroupedMetadata):
    """The checks of a text other people see (names, campaign texts, exclusion reasons), as
    ``Annotated[str, ShownText(...)]``: NFKC first, then its StringConstraints, then no Cc, Cf,
    Zl, Zp (line feeds only if multi-line)."""

    def __init__(self, multiline: bool = False, **constraints: Any) -> None:
        self.multiline = multiline
        self.constraints = StringConstraints(**constraints)

    def __iter__(self) -> Iterator[object]:
        multiline = self.multiline
        yield from self.constraints
        yield BeforeValidator(lambda value: _normalised(value, multiline))  # before str's checks
        yield AfterValidator(lambda value: _refuse_hidden_characters(value, multiline))


DbId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
"""A row id in a path: out-of-range ids are a 422, never a database error."""

PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
"""A page of a list, from 1."""

PerPage = Annotated[int, Query(ge=1, le=200)]
"""Rows on a page of a list."""
