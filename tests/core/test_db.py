"""Database helpers: get_or_create survives a concurrent creator (on SQLite and PostgreSQL)."""

from sqlalchemy import func, select

from clickme.core.db import Database, get_or_create
from clickme.images.models import ImageSet


def test_get_or_create_returns_the_row_a_concurrent_request_inserted_first(
    database: Database,
) -> None:
    with database.session() as session:
        session.add(ImageSet(name="birds"))
    with database.session() as session:
        looks = iter([None])  # our first look happened before the other request's insert

        def find() -> ImageSet | None:
            stale = next(looks, "fresh")
            if stale is None:
                return None
            return session.scalar(select(ImageSet).where(ImageSet.name == "birds"))

        row = get_or_create(session, find, lambda: ImageSet(name="birds"))
        assert row.name == "birds" and row.id is not None
        session.add(ImageSet(name="still-usable"))  # the transaction survived the refusal
    with database.session() as session:
        assert session.scalar(select(func.count(ImageSet.id))) == 2


def test_get_or_create_creates_once(database: Database) -> None:
    with database.session() as session:
        find = lambda: session.scalar(select(ImageSet).where(ImageSet.name == "cars"))  # noqa: E731
        first = get_or_create(session, find, lambda: ImageSet(name="cars"))
        again = get_or_create(session, find, lambda: ImageSet(name="cars"))
        assert first.id == again.id
