"""Database engine, sessions and the declarative base (SQLite or PostgreSQL)."""

import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from keyword import iskeyword
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from sqlalchemy import (
    CursorResult,
    DateTime,
    Engine,
    Float,
    FunctionElement,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import Label
from sqlalchemy.types import TypeDecorator, TypeEngine

from clickme.core import config

T = TypeVar("T")

# A pooled PostgreSQL connection idle in the pool longer than this is pinged (a round trip)
# before use, so that one the server closed meanwhile (a restart) is replaced, not failed on.
# One checked in moments ago is not: under load the ping cost a round trip per session. A
# connection lost while in use fails its request, and SQLAlchemy then replaces every pooled one.
PING_IF_IDLE_S = 1.0
_IDLE_SINCE = "clickme.idle_since"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class RandomUnit(FunctionElement[float]):
    """A random number in [0, 1), drawn by the database for each row: PostgreSQL's
    ``random()``; SQLite's ``random()`` is a 64-bit integer, scaled to the same range."""

    type = Float()
    inherit_cache = True


@compiles(RandomUnit)
def _random_unit(element: RandomUnit, compiler: SQLCompiler, **kw: Any) -> str:
    return "random()"


@compiles(RandomUnit, "sqlite")
def _random_unit_sqlite(element: RandomUnit, compiler: SQLCompiler, **kw: Any) -> str:
    return "(random() / 18446744073709551616.0 + 0.5)"


def _tune_sqlite(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def get_or_create(session: Session, find: Callable[[], T | None], create: Callable[[], T]) -> T:
    """The row ``find`` returns, else a new one from ``create``; when a concurrent request
    inserted the same row first (a unique constraint refuses ours), theirs is returned."""
    found = find()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            row = create()
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        found = find()
        if found is None:
            raise
        return found


def changed_rows(session: Session, statement: UpdateBase) -> int:
    """Runs an INSERT, UPDATE or DELETE in the session; the rows it matched (``Session.execute``
    returns a ``CursorResult`` for these, though typed as a plain ``Result``)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def note_for_commit(session: Session, key: str, item: object) -> None:
    """Remember ``item`` under ``key`` until the session's transaction ends (see
    ``after_commit``)."""
    session.info.setdefault(key, []).append(item)


# The listeners of each session factory, by key (``after_commit``), for ``announce_committed``.
_LISTENERS: WeakKeyDictionary[sessionmaker, dict[str, list[Callable[[list], None]]]] = (
    WeakKeyDictionary()
)


def after_commit(sessions: sessionmaker, key: str, listener: Callable[[list], None]) -> None:
    """After each commit, ``listener`` gets what was noted under ``key`` (if anything) during
    the transaction; a rollback forgets it. How a lower layer tells a higher one what it did.
    What one statement committed outside any session reaches it too (``announce_committed``)."""
    _LISTENERS.setdefault(sessions, {}).setdefault(key, []).append(listener)

    def committed(session: Session) -> None:
        noted = session.info.pop(key, None)
        if noted:
            listener(noted)

    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_rollback", lambda session: session.info.pop(key, None))


def announce_committed(sessions: sessionmaker, key: str, items: list) -> None:
    """What a statement committed outside any session (in autocommit) did, told to the
    listeners of ``key`` as a session's commit would have told them."""
    for listener in _LISTENERS.get(sessions, {}).get(key, []):
        listener(items)


def _ping_if_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it sat idle over ``PING_IF_IDLE_S``."""

    def idle_from_now(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get(_IDLE_SINCE, float("-inf"))
        if time.monotonic() - idle_since <= PING_IF_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool retries with a new one
            raise DisconnectionError("the pooled connection did not answer its ping") from exc

    event.listen(engine, "connect", idle_from_now)
    event.listen(engine, "checkin", idle_from_now)
    event.listen(engine, "checkout", checkout)


def make_engine(
    url: str, pooled: bool = True, autocommit: bool = False, synchronous_commit: bool = True
) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL
    pooled connections pinged only after sitting idle (``PING_IF_IDLE_S``). With
    ``autocommit``, its connections are outside any transaction from the start; without
    ``synchronous_commit`` (PostgreSQL), a commit returns before its WAL is flushed to disk."""
    pool_args: dict[str, object] = {} if pooled else {"poolclass": NullPool}
    if autocommit:
        pool_args["isolation_level"] = "AUTOCOMMIT"
    if url.startswith("sqlite"):
        if pooled:  # last in, first out: a connection whose page cache nobody else made stale
            pool_args["pool_size"] = 8
            pool_args["pool_use_lifo"] = True
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool_args)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if not synchronous_commit:
        pool_args["connect_args"] = {"options": "-c synchronous_commit=off"}
    if not pooled:
        return create_engine(url, **pool_args)
    engine = create_engine(url, pool_size=10, max_overflow=20, **pool_args)
    _ping_if_idle(engine)
    return engine


def _compiled_once(statement: ClauseElement, engine: Engine) -> SQLCompiler:
    """The statement compiled for the engine, refused where SQLAlchemy does work at each
    execution: a value rendered into the SQL (a list for ``IN``), or a column's default
    computed in Python (give such a column its value in the statement)."""
    compiled = cast(SQLCompiler, statement.compile(engine))
    rendered = sorted(bind.key for bind in compiled.post_compile_params)
    if rendered:
        raise ValueError(f"the statement's SQL is written at each execution for {rendered}")
    computed = sorted(
        column.key for column in (*compiled.insert_prefetch, *compiled.update_prefetch)
    )
    if computed:
        raise ValueError(f"SQLAlchemy computes the defaults of {computed} at each execution")
    return compiled


@dataclass(frozen=True)
class _RawStatement:
    """A statement's SQL for its DBAPI, and how its values are passed: by name or position,
    each through its type's bind processor (None: as it is); a value written in the statement
    (``limit(1)``) is passed as it is there, unless the parameters name it."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    written: dict[str, Any]
    positional: bool
    # what a row of its result holds: each column's name (None: not all distinct names) and
    # type (its result processor needs the DBAPI's type code: ``_RowReader``)
    row_type: Callable[..., tuple] | None
    result_types: tuple[TypeEngine, ...]

    @classmethod
    def of(cls, statement: ClauseElement, engine: Engine) -> "_RawStatement":
        compiled = _compiled_once(statement, engine)
        dialect = engine.dialect
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup or ()) if dialect.positional else tuple(binds)
        processors = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        written = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        columns = list(getattr(statement, "exported_columns", ()))  # a query's, or RETURNING's
        types = tuple(column.type.dialect_impl(dialect) for column in columns)
        keys = [column.key for column in columns]
        named = all(isinstance(key, str) and key.isidentifier() for key in keys)
        distinct = named and len(set(keys)) == len(keys) and not any(map(iskeyword, keys))
        row_type = namedtuple("Row", keys) if distinct else None
        return cls(str(compiled), names, processors, written, dialect.positional, row_type, types)

    def values(self, parameters: Mapping[str, Any]) -> tuple | dict[str, Any]:
        if self.written:
            parameters = self.written | dict(parameters)
        values = (
            parameters[name] if process is None else process(parameters[name])
            for name, process in zip(self.names, self.processors, strict=True)
        )
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


@dataclass(frozen=True)
class _RowReader:
    """How a statement's rows are read by column name, each value through its type's result
    processor (None: as it is) for the type code the DBAPI reported, as SQLAlchemy reads them."""

    row_type: Callable[..., tuple]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, raw: _RawStatement, dialect: Any, description: Sequence[Any]) -> "_RowReader":
        assert raw.row_type is not None  # checked before the statement ran
        processors = tuple(
            type_.result_processor(dialect, column[1])  # DBAPI: the type code, second
            for type_, column in zip(raw.result_types, description, strict=True)
        )
        return cls(raw.row_type, processors)

    def row(self, values: tuple) -> tuple:
        processed = (
            value if process is None else process(value)
            for value, process in zip(values, self.processors, strict=True)
        )
        return self.row_type(*processed)


@contextmanager
def _dbapi_connection(engine: Engine) -> Iterator[PoolProxiedConnection]:
    """A DBAPI connection of the engine's pool, given back at the end; the database out of
    reach raises as SQLAlchemy's checkout does."""
    dialect = engine.dialect
    try:
        connection = engine.raw_connection()
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            None, None, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    try:
        yield connection
    finally:
        connection.close()


@contextmanager
def _as_sqlalchemy_errors(
    engine: Engine, connection: PoolProxiedConnection, sql: str | None, values: Any
) -> Iterator[None]:
    """A DBAPI error in the block raised as SQLAlchemy's (a lost connection invalidated)."""
    dialect = engine.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, connection.dbapi_connection, None)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, values, error, dialect.loaded_dbapi.Error, False, lost, dialect
        ) from error


def _on_cursor(
    engine: Engine,
    connection: PoolProxiedConnection,
    sql: str,
    values: Any,
    read: Callable[[Any], T],
) -> T:
    """What ``read`` takes from a cursor of the DBAPI connection once ``sql`` ran on it;
    errors as SQLAlchemy's."""
    with _as_sqlalchemy_errors(engine, connection, sql, values):
        cursor = connection.cursor()
        try:
            cursor.execute(sql, values)
            return read(cursor)
        finally:
            cursor.close()


def _rowcount(cursor: Any) -> int:
    return cursor.rowcount


def _all_rows(cursor: Any) -> tuple[list[tuple], Any]:
    """Every row (SQLite runs a RETURNING statement to its end only once they are read) and
    the columns' description."""
    return cursor.fetchall(), cursor.description


def _first_value(cursor: Any) -> Any:
    row = cursor.fetchone()
    return None if row is None else row[0]


# Each statement compiled once for each kind of database (``_RawStatement``), and how its rows
# are read once it has run (``_RowReader``), by statement and dialect.
_RAW_STATEMENTS: dict[tuple[ClauseElement, str], _RawStatement] = {}
_ROW_READERS: dict[tuple[ClauseElement, str], _RowReader] = {}


def _raw_statement(statement: ClauseElement, engine: Engine) -> _RawStatement:
    key = (statement, engine.dialect.name)
    raw = _RAW_STATEMENTS.get(key)
    if raw is None:
        raw = _RAW_STATEMENTS[key] = _RawStatement.of(statement, engine)
    return raw


def _named_raw_statement(statement: ClauseElement, engine: Engine) -> _RawStatement:
    """``_raw_statement``, for a statement whose rows are read by column name."""
    raw = _raw_statement(statement, engine)
    if raw.row_type is None:
        raise ValueError("rows are read by column name: give each a distinct name")
    return raw


def _read_rows(
    statement: ClauseElement,
    raw: _RawStatement,
    engine: Engine,
    rows: list[tuple],
    description: Any,
) -> list[Any]:
    """The DBAPI's rows by column name, each value as SQLAlchemy's result gives it."""
    if not rows:
        return []
    key = (statement, engine.dialect.name)
    reader = _ROW_READERS.get(key)
    if reader is None:
        reader = _ROW_READERS[key] = _RowReader.of(raw, engine.dialect, description)
    return [reader.row(row) for row in rows]


ModelT = TypeVar("ModelT", bound=Base)


def prefixed_columns(model: type[Base], prefix: str) -> tuple[Label[Any], ...]:
    """The model's columns, each labelled ``{prefix}{key}``: to read two models' rows in one
    statement without their names meeting (``built``)."""
    return tuple(column.label(f"{prefix}{column.key}") for column in model.__table__.columns)


def built(model: type[ModelT], row: Any, prefix: str = "") -> ModelT:
    """An instance of the model from a row's columns (``{prefix}{key}``), in no session: for
    reading only, without the ORM's load of the row (0.3 to 0.6 CPU ms an object in play)."""
    return model(**{c.key: getattr(row, f"{prefix}{c.key}") for c in model.__table__.columns})


class InTransaction:
    """Statements run on a session's own DBAPI connection, in its transaction (committed or
    rolled back with it), each compiled once and given its values as SQLAlchemy would
    (``_RawStatement``): none of SQLAlchemy's work per execution (compiling the cache key,
    the result's layers), about 0.15 CPU ms a statement after a pause. For a request's
    several statements on its hot path. It fires no engine event; errors come as
    ``Connection.execute`` raises them (SQLAlchemy's, a lost connection invalidated)."""

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self._engine = connection.engine
        self._connection = connection.connection

    def rows(self, statement: ClauseElement, parameters: Mapping[str, Any]) -> list[Any]:
        """Every row of a query (or of RETURNING), by column name (``row_of``'s)."""
        raw = _named_raw_statement(statement, self._engine)
        values = raw.values(parameters)
        found = _on_cursor(self._engine, self._connection, raw.sql, values, _all_rows)
        return _read_rows(statement, raw, self._engine, *found)

    def first(self, statement: ClauseElement, parameters: Mapping[str, Any]) -> Any:
        """The first row, or None."""
        rows = self.rows(statement, parameters)
        return rows[0] if rows else None

    def scalar(self, statement: ClauseElement, parameters: Mapping[str, Any]) -> Any:
        """The first value of the first row (None for no row), as the DBAPI gives it (no
        result processing: for flags, counts and ids)."""
        raw = _raw_statement(statement, self._engine)
        values = raw.values(parameters)
        return _on_cursor(self._engine, self._connection, raw.sql, values, _first_value)

    def rowcount(self, statement: ClauseElement, parameters: Mapping[str, Any]) -> int:
        """The rows an INSERT, UPDATE or DELETE changed."""
        raw = _raw_statement(statement, self._engine)
        values = raw.values(parameters)
        return _on_cursor(self._engine, self._connection, raw.sql, values, _rowcount)


class Database:
    """One engine and its session factory; and for work of one statement, an engine in
    autocommit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @cached_property
    def autocommit_engine(self) -> Engine:
        """Connections outside any transaction: each statement commits on its own (no BEGIN or
        COMMIT round trips), for one statement that needs no other. A pool of its own: a
        connection of ``engine`` switched to autocommit for a statement would be switched at
        its checkout and back at its checkin (a fifth of the reveal's store, measured)."""
        return make_engine(self.url, autocommit=True)

    @cached_property
    def lazy_commit_engine(self) -> Engine:
        """``autocommit_engine``'s like, whose commits return before their WAL is on disk
        (PostgreSQL's ``synchronous_commit`` off: a crash of the database loses at most its
        last 3 ``wal_writer_delay``, 0.6 s by default, of such commits, and nothing a later
        synchronous commit followed: the WAL is flushed in order)."""
        return make_engine(self.url, autocommit=True, synchronous_commit=False)

    def rowcount_of(
        self, statement: ClauseElement, parameters: dict[str, Any], durable: bool = True
    ) -> int:
        """The rows one statement changed, run in autocommit on a DBAPI connection of its pool,
        on PostgreSQL (not ``durable``: ``lazy_commit_engine``'s): the statement compiled once,
        its values given as SQLAlchemy would (``_RawStatement``), none of SQLAlchemy's other
        work per execution (a fifth of the reveal's thread, ``benchmarks/bench_requests.py``).
        It fires no engine event. Errors come as ``Connection.execute`` raises them
        (SQLAlchemy's, a lost connection invalidated)."""
        if self.engine.dialect.name != "postgresql":
            raise ValueError("rowcount_of runs on PostgreSQL only (one statement in autocommit)")
        engine = self.autocommit_engine if durable else self.lazy_commit_engine
        raw = _raw_statement(statement, self.engine)
        with _dbapi_connection(engine) as connection:
            values = raw.values(parameters)
            return _on_cursor(engine, connection, raw.sql, values, _rowcount)

    def each_changes_a_row(self, steps: list[tuple[ClauseElement, dict[str, Any]]]) -> bool:
        """Runs the statements in order in one transaction on a DBAPI connection of the pool,
        each compiled once and given its values as SQLAlchemy would (through their types);
        at the first that changes no row, rolls back and says False, else commits. For the
        hot path's statements where the database cannot run them as one (SQLite has no
        data-modifying CTE): SQLAlchemy's work per execution was a quarter of the reveal's
        store (``benchmarks/bench_reveal.py``). It fires no engine event; errors come as
        ``Connection.execute`` raises them."""
        with _dbapi_connection(self.engine) as connection:
            for statement, parameters in steps:
                raw = _raw_statement(statement, self.engine)
                values = raw.values(parameters)
                if not _on_cursor(self.engine, connection, raw.sql, values, _rowcount):
                    with _as_sqlalchemy_errors(self.engine, connection, "ROLLBACK", None):
                        connection.rollback()
                    return False
            with _as_sqlalchemy_errors(self.engine, connection, "COMMIT", None):
                connection.commit()
            return True

    def scalar_of(self, statement: ClauseElement, parameters: dict[str, Any]) -> Any:
        """The first value of the first row a read-only statement returns (None for no row),
        as the DBAPI gives it (no result processing: for flags and counts). On a DBAPI
        connection of a pool (PostgreSQL's in autocommit: no BEGIN or ROLLBACK round trips),
        compiled once and given its values as SQLAlchemy would: after an idle pause, a third
        of a session's CPU (SQLite), for the checks repeated while nothing happens. It fires no
        engine event; errors come as ``Connection.execute`` raises them."""
        engine = self._engine_alone()
        raw = _raw_statement(statement, self.engine)
        with _dbapi_connection(engine) as connection:
            return _on_cursor(engine, connection, raw.sql, raw.values(parameters), _first_value)

    def row_of(self, statement: ClauseElement, parameters: dict[str, Any]) -> Any:
        """The first row of one statement's result (None for none; a query's, or RETURNING's),
        by column name, its values as SQLAlchemy's result gives them; what it changed committed
        with it (PostgreSQL: in autocommit). On a DBAPI connection of a pool, compiled once
        (``rowcount_of``): for the start call's statement, its thread 0.92 against 1.17 CPU ms
        with ``Connection.execute`` (``benchmarks/bench_requests.py``). It fires no engine
        event; errors come as ``Connection.execute`` raises them."""
        rows = self.rows_of(statement, parameters)
        return rows[0] if rows else None

    def rows_of(self, statement: ClauseElement, parameters: Mapping[str, Any]) -> list[Any]:
        """Every row of one statement's result, read as ``row_of`` reads its first: for a
        round's end, the player's leaderboard entries (``clickme.game.leaderboard``)."""
        engine = self._engine_alone()
        raw = _named_raw_statement(statement, engine)
        with _dbapi_connection(engine) as connection:
            values = raw.values(parameters)
            rows, description = _on_cursor(engine, connection, raw.sql, values, _all_rows)
            if engine is self.engine:  # SQLite's module began a transaction for a change
                with _as_sqlalchemy_errors(engine, connection, "COMMIT", None):
                    connection.commit()
        return _read_rows(statement, raw, engine, rows, description)

    def _engine_alone(self) -> Engine:
        """Where one statement runs on its own: PostgreSQL's autocommit pool (no BEGIN or COMMIT
        round trips), else the engine (SQLite)."""
        postgresql = self.engine.dialect.name == "postgresql"
        return self.autocommit_engine if postgresql else self.engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        for made in ("autocommit_engine", "lazy_commit_engine"):
            if made in self.__dict__:
                self.__dict__[made].dispose()


@contextmanager
def configured_session() -> Iterator[tuple[Session, config.Settings]]:
    """A committing session on the configured database, and the settings (for the commands):
    the engine is disposed of at the end."""
    settings = config.get_settings()
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            yield session, settings
    finally:
        database.dispose()
