"""Database helpers: get_or_create survives a concurrent creator (on SQLite and PostgreSQL);
the autocommit pool commits each statement alone and closes with the database; PostgreSQL's
pooled connections are pinged only after sitting idle."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    create_engine,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from clickme.core import db
from clickme.core.db import Database, InTransaction, get_or_create
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


def test_the_autocommit_pool_commits_each_statement_alone_and_closes_with_the_database(
    database: Database,
) -> None:
    with database.autocommit_engine.connect() as connection:
        connection.execute(insert(ImageSet), {"name": "kept", "created_at": db.utcnow()})
    # closed without a commit: the statement committed on its own
    with database.session() as session:
        assert session.scalar(select(ImageSet.name)) == "kept"
    assert database.autocommit_engine.pool.checkedin() == 1
    database.dispose()
    assert database.autocommit_engine.pool.checkedin() == 0


def _postgres_only(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to lose a connection to")


def _counting_pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    real_ping = database.engine.dialect.do_ping

    def ping(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", ping)
    return pings


def test_a_connection_used_moments_ago_is_not_pinged_one_idle_longer_is(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(database)
    pings = _counting_pings(database, monkeypatch)
    for _ in range(3):
        with database.engine.connect() as connection:
            connection.execute(select(1))
    assert pings == []
    monkeypatch.setattr(db, "PING_IF_IDLE_S", 0.0)
    with database.engine.connect() as connection:
        connection.execute(select(1))
    assert len(pings) == 1


def test_a_pooled_connection_the_server_closed_while_idle_is_replaced(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(database)
    with database.engine.connect() as connection:
        lost_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(database.url, poolclass=NullPool)
    with admin.connect() as connection:
        assert connection.execute(text(f"SELECT pg_terminate_backend({lost_pid})")).scalar()
    admin.dispose()
    monkeypatch.setattr(db, "PING_IF_IDLE_S", 0.0)  # as if it had sat idle for a while
    with database.session() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert pid != lost_pid


# The columns given, by name (a statement is compiled once, for every execution).
NEW_SET = insert(ImageSet).values(
    name=bindparam("name"), description=bindparam("description"), created_at=bindparam("at")
)
RENAME = update(ImageSet).where(ImageSet.name == bindparam("old")).values(name=bindparam("new"))


def test_rowcount_of_runs_a_statement_on_its_own_as_connection_execute_would(
    database: Database,
) -> None:
    """On PostgreSQL: committed alone (no transaction to close), the rows it changed, the
    connection back in the autocommit pool; elsewhere refused."""
    row = {"name": "raw", "description": "", "at": db.utcnow()}
    if database.engine.dialect.name != "postgresql":
        with pytest.raises(ValueError, match="PostgreSQL only"):
            database.rowcount_of(NEW_SET, row)
        return
    assert database.rowcount_of(NEW_SET, row) == 1
    assert database.rowcount_of(RENAME, {"old": "raw", "new": "kept"}) == 1
    assert database.rowcount_of(RENAME, {"old": "raw", "new": "kept"}) == 0
    with pytest.raises(ValueError, match="written at each execution"):
        database.rowcount_of(update(ImageSet).where(ImageSet.name.in_(["kept", "x"])), {})
    with database.session() as session:
        assert session.scalars(select(ImageSet.name)).all() == ["kept"]
    assert database.autocommit_engine.pool.checkedout() == 0


def test_rowcount_of_not_durable_commits_without_waiting_for_the_wal(database: Database) -> None:
    """Not ``durable``: the statement runs with PostgreSQL's ``synchronous_commit`` off (on a
    pool of its own), committed all the same; ``durable`` (the default) with it on."""
    _postgres_only(database)
    only_if = "current_setting('synchronous_commit') = :wanted"
    rename = RENAME.where(text(only_if))
    assert database.rowcount_of(NEW_SET, {"name": "raw", "description": "", "at": db.utcnow()})
    renamed = {"old": "raw", "new": "lazy"}
    assert database.rowcount_of(rename, renamed | {"wanted": "on"}, durable=False) == 0
    assert database.rowcount_of(rename, renamed | {"wanted": "off"}, durable=False) == 1
    assert database.rowcount_of(rename, {"old": "lazy", "new": "on", "wanted": "off"}) == 0
    assert database.rowcount_of(rename, {"old": "lazy", "new": "on", "wanted": "on"}) == 1
    with database.session() as session:
        assert session.scalar(select(ImageSet.name)) == "on"
        assert session.scalar(text("SHOW synchronous_commit")) == "on"
    assert database.lazy_commit_engine.pool.checkedin() == 1
    database.dispose()
    assert database.lazy_commit_engine.pool.checkedin() == 0


def test_rowcount_of_raises_database_errors_as_sqlalchemy_does(database: Database) -> None:
    """A refused statement as SQLAlchemy's IntegrityError; a database out of reach as its
    OperationalError (the API's 503 ``database_unavailable``), at the connection's checkout or
    for a connection the server lost (invalidated: the next statement gets a new one)."""
    _postgres_only(database)
    row = {"name": "twice", "description": "", "at": db.utcnow()}
    assert database.rowcount_of(NEW_SET, row) == 1
    with pytest.raises(IntegrityError):
        database.rowcount_of(NEW_SET, row)  # the name is unique
    connection = database.autocommit_engine.raw_connection()
    lost_pid = connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    connection.close()
    admin = create_engine(database.url, poolclass=NullPool)
    with admin.connect() as admin_connection:
        admin_connection.execute(text(f"SELECT pg_terminate_backend({lost_pid})"))
    admin.dispose()
    renamed = update(ImageSet).values(name=bindparam("new"))
    with pytest.raises(OperationalError) as lost:
        database.rowcount_of(renamed, {"new": "again"})
    assert lost.value.connection_invalidated
    assert database.rowcount_of(renamed, {"new": "again"}) == 1
    no_server = make_url(database.url).set(host="127.0.0.1", port=1)
    unreachable = Database(no_server.render_as_string(hide_password=False))
    with pytest.raises(OperationalError):
        unreachable.rowcount_of(renamed, {"new": "again"})
    unreachable.dispose()


CREATED_BEFORE = select(exists().where(ImageSet.created_at < bindparam("before")))
NAMED = select(ImageSet.name).where(ImageSet.name == bindparam("name"))


def test_scalar_of_answers_as_a_session_would(database: Database) -> None:
    """The first value of the first row, None for no row; a time compared through its column's
    type (SQLite keeps it as SQLAlchemy's text); the connection back in its pool."""
    at = db.utcnow()
    with database.engine.begin() as connection:
        connection.execute(NEW_SET, {"name": "kept", "description": "", "at": at})
    for before in (at - timedelta(seconds=1), at, at + timedelta(microseconds=1)):
        with database.session() as session:
            expected = session.scalar(CREATED_BEFORE, {"before": before})
        assert bool(database.scalar_of(CREATED_BEFORE, {"before": before})) is expected
    assert database.scalar_of(NAMED, {"name": "kept"}) == "kept"
    assert database.scalar_of(NAMED, {"name": "nobody"}) is None
    assert database.scalar_of(select(ImageSet.name).where(ImageSet.name == "kept"), {}) == "kept"
    with pytest.raises(ValueError, match="written at each execution"):
        database.scalar_of(select(ImageSet.id).where(ImageSet.name.in_(["kept", "x"])), {})
    postgresql = database.engine.dialect.name == "postgresql"
    pool = database.autocommit_engine.pool if postgresql else database.engine.pool
    assert pool.checkedout() == 0
    missing = Table("never_made", MetaData(), Column("id", Integer, primary_key=True))
    with pytest.raises(DBAPIError):
        database.scalar_of(select(missing.c.id).where(missing.c.id == bindparam("id")), {"id": 1})
    assert pool.checkedout() == 0


RENAMING = (
    update(ImageSet)
    .where(ImageSet.name == bindparam("old"))
    .values(name=bindparam("new"))
    .returning(ImageSet.name, ImageSet.created_at, ImageSet.id)
)
_RENAMED = RENAMING.cte("renamed")
RENAMED_ROW = select(_RENAMED.c.name, _RENAMED.c.created_at, _RENAMED.c.id)


def test_row_of_answers_as_connection_execute_would_and_commits(database: Database) -> None:
    """The first row of a RETURNING (and on PostgreSQL, of a query over a data-modifying CTE)
    by column name, each value as SQLAlchemy's result gives it (a time zone-aware through its
    column's type), None for no row; what it changed committed; the connection back in its
    pool; a refused statement raised as SQLAlchemy's error."""
    postgresql = database.engine.dialect.name == "postgresql"
    pool = database.autocommit_engine.pool if postgresql else database.engine.pool
    at = db.utcnow()
    with database.engine.begin() as connection:
        connection.execute(NEW_SET, {"name": "kept", "description": "", "at": at})
        expected = connection.execute(select(ImageSet.name, ImageSet.created_at, ImageSet.id))
        expected_row = expected.one()
    steps = [(RENAMING, "kept", "moved"), (RENAMED_ROW, "moved", "again")]
    for statement, old, new in steps if postgresql else steps[:1]:
        row = database.row_of(statement, {"old": old, "new": new})
        assert row is not None
        assert tuple(row) == (new, *expected_row[1:])
        assert (row.name, row.created_at, row.id) == (new, at, expected_row.id)
        assert row.created_at.tzinfo is not None
        assert database.row_of(statement, {"old": old, "new": "never"}) is None
        with database.session() as session:
            assert session.scalars(select(ImageSet.name)).all() == [new]
        assert pool.checkedout() == 0
    _check_results_go_through_their_types(database)
    twice = select(ImageSet.id, ImageSet.id.label("id")).where(ImageSet.name == bindparam("name"))
    with pytest.raises(ValueError, match="distinct name"):
        database.row_of(twice, {"name": new})
    with database.engine.begin() as connection:
        connection.execute(NEW_SET, {"name": "other", "description": "", "at": at})
    with pytest.raises(IntegrityError):
        database.row_of(RENAMING, {"old": "other", "new": new})  # the name is unique
    assert pool.checkedout() == 0


class _Tagged(TypeDecorator[str]):
    """Text read back tagged: whether a result went through its type."""

    impl = String(20)
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else f"read {value}"


def _check_results_go_through_their_types(database: Database) -> None:
    """A result processor of the test's own type; numbers whose processors need the DBAPI's
    type code (PostgreSQL's numeric as a float, a float as a Decimal), as SQLAlchemy reads
    them."""
    tagged = Table(
        "tagged_values",
        MetaData(),
        Column("value", _Tagged, primary_key=True),
        Column("share", Numeric(6, 3, asdecimal=False)),
        Column("ratio", Float(asdecimal=True)),
    )
    tagged.create(database.engine)
    try:
        with database.engine.begin() as connection:
            connection.execute(insert(tagged).values(value="x", share=0.125, ratio=0.5))
            query = select(tagged).where(tagged.c.value == bindparam("value"))
            expected = connection.execute(query, {"value": "x"}).one()
        row = database.row_of(query, {"value": "x"})
        assert row == ("read x", 0.125, Decimal("0.5")) == tuple(expected)
        assert [type(value) for value in row] == [type(value) for value in expected]
    finally:
        tagged.drop(database.engine)


def _image_sets(database: Database) -> list[tuple[str, str]]:
    """Each image set's name and its creation time as the database keeps it (SQLite: text)."""
    with database.engine.connect() as connection:
        raw = text("SELECT name, CAST(created_at AS TEXT) FROM image_sets ORDER BY id")
        return [(name, at) for name, at in connection.execute(raw)]


def test_each_changes_a_row_passes_values_as_connection_execute_would(
    database: Database,
) -> None:
    """Each value through its column's type (SQLite keeps a UTC time as SQLAlchemy's text),
    committed together, the connection back in the pool."""
    at = db.utcnow()
    with database.engine.begin() as connection:
        connection.execute(NEW_SET, {"name": "by-sqlalchemy", "description": "", "at": at})
    steps = [
        (NEW_SET, {"name": "raw", "description": "", "at": at}),
        (RENAME, {"old": "raw", "new": "by-dbapi"}),
    ]
    assert database.each_changes_a_row(steps)
    (_, expected), (name, stored) = _image_sets(database)
    assert (name, stored) == ("by-dbapi", expected)
    with database.session() as session:
        assert session.scalars(select(ImageSet.created_at)).all() == [at, at]
    assert database.engine.pool.checkedout() == 0
    with pytest.raises(ValueError, match="defaults of \\['created_at', 'description'\\]"):
        database.each_changes_a_row([(insert(ImageSet).values(name=bindparam("name")), {})])


def test_each_changes_a_row_stops_at_the_first_that_changes_none(database: Database) -> None:
    """Then nothing of the earlier statements is kept; a refused statement raises as
    SQLAlchemy's error and keeps nothing either."""
    new_set = (NEW_SET, {"name": "first", "description": "", "at": db.utcnow()})
    assert not database.each_changes_a_row([new_set, (RENAME, {"old": "nobody", "new": "x"})])
    assert _image_sets(database) == []
    twice = (NEW_SET, {"name": "twice", "description": "", "at": db.utcnow()})
    with pytest.raises(IntegrityError):  # the name is unique
        database.each_changes_a_row([new_set, twice, twice])
    assert _image_sets(database) == []
    assert database.each_changes_a_row([twice])
    assert [name for name, _ in _image_sets(database)] == ["twice"]
    assert database.engine.pool.checkedout() == 0


def test_each_changes_a_row_raises_an_error_at_commit_as_sqlalchemy_does(
    database: Database,
) -> None:
    """A constraint checked only at COMMIT (a deferred foreign key) refuses the transaction
    with SQLAlchemy's IntegrityError, and nothing of it is kept."""
    tables = MetaData()
    parents = Table("deferred_parents", tables, Column("id", Integer, primary_key=True))
    children = Table(
        "deferred_children",
        tables,
        Column("id", Integer, primary_key=True),
        Column(
            "parent_id",
            Integer,
            ForeignKey(parents.c.id, deferrable=True, initially="DEFERRED"),
        ),
    )
    tables.create_all(database.engine)
    try:
        orphan = insert(children).values(id=bindparam("id"), parent_id=bindparam("parent"))
        with pytest.raises(IntegrityError):
            database.each_changes_a_row([(orphan, {"id": 1, "parent": 7})])
        with database.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(children)).scalar() == 0
        assert database.engine.pool.checkedout() == 0
    finally:
        tables.drop_all(database.engine)


def test_sqlite_hands_out_the_connection_given_back_last(tmp_path: Path) -> None:
    """Last in, first out: at low concurrency one connection serves every reveal, its SQLite
    page cache still valid (a connection another one wrote after must drop its cache)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'lifo.db'}")
    try:
        first, second = engine.raw_connection(), engine.raw_connection()
        first_dbapi, second_dbapi = first.dbapi_connection, second.dbapi_connection
        first.close()
        second.close()
        again = engine.raw_connection()
        assert again.dbapi_connection is second_dbapi is not first_dbapi
        again.close()
    finally:
        engine.dispose()


FIRST_WRITTEN = (
    select(ImageSet.name, ImageSet.created_at)
    .where(ImageSet.description == "written")
    .order_by(ImageSet.name)
    .limit(1)
)


def test_in_transaction_runs_in_the_sessions_own_transaction(database: Database) -> None:
    """On the session's connection: its statements see what the session did and the session
    sees theirs; rolled back and committed with it; values written in a statement (a compared
    text, a LIMIT) passed as SQLAlchemy passes them; rows by column name through their types;
    an error raised as SQLAlchemy's; nothing left checked out."""
    at = db.utcnow()
    with database.session() as session:
        session.add(ImageSet(name="orm", description="written", created_at=at))
        session.flush()
        transaction = InTransaction(session)
        assert transaction.rowcount(NEW_SET, {"name": "raw", "description": "written", "at": at})
        assert transaction.rows(FIRST_WRITTEN, {}) == [("orm", at)]
        first = transaction.first(FIRST_WRITTEN, {})
        assert (first.name, first.created_at.utcoffset()) == ("orm", timedelta(0))
        assert transaction.first(NAMED, {"name": "nobody"}) is None
        assert transaction.scalar(NAMED, {"name": "raw"}) == "raw"
        assert session.scalars(select(ImageSet.name).order_by(ImageSet.name)).all() == [
            "orm",
            "raw",
        ]
        session.rollback()
    assert _image_sets(database) == []
    with database.session() as session:
        InTransaction(session).rowcount(NEW_SET, {"name": "kept", "description": "", "at": at})
    assert [name for name, _ in _image_sets(database)] == ["kept"]
    with database.session() as session:
        transaction = InTransaction(session)
        with pytest.raises(IntegrityError):  # the name is unique
            transaction.rowcount(NEW_SET, {"name": "kept", "description": "", "at": at})
        session.rollback()
        twice = select(ImageSet.id, ImageSet.id.label("id"))
        with pytest.raises(ValueError, match="distinct name"):
            InTransaction(session).rows(twice, {})
    assert database.engine.pool.checkedout() == 0


def test_rows_of_reads_every_row_as_row_of_reads_its_first(database: Database) -> None:
    """In order, by column name, through their types; none: an empty list; nothing left
    checked out."""
    at = db.utcnow()
    with database.engine.begin() as connection:
        for name in ("b", "a"):
            connection.execute(NEW_SET, {"name": name, "description": "written", "at": at})
    by_name = FIRST_WRITTEN.limit(None)
    rows = database.rows_of(by_name, {})
    assert rows == [("a", at), ("b", at)]
    assert [row.name for row in rows] == ["a", "b"]
    assert database.row_of(by_name, {}) == rows[0]
    assert database.rows_of(NAMED, {"name": "nobody"}) == []
    postgresql = database.engine.dialect.name == "postgresql"
    pool = database.autocommit_engine.pool if postgresql else database.engine.pool
    assert pool.checkedout() == 0
