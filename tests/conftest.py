"""Shared fixtures: a real database per backend (SQLite file and PostgreSQL), settings, paths."""

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.migrate import upgrade
from clickme.tables import Base
from tests.photos import write_demo_photos

pytest_plugins = ["tests.app_fixtures", "tests.live_server", "tests.redis_server"]

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "CLICKME_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("CLICKME_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def imagenet_sample_path() -> Path:
    """The ImageNet sample folder (CLICKME_IMAGENET_SAMPLE, else ../shared beside the repo)."""
    configured = os.environ.get("CLICKME_IMAGENET_SAMPLE")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "imagenet-sample"


# The tests skipped because the ImageNet sample folder is missing (named once at the end).
WITHOUT_SAMPLE: list[str] = []


@pytest.fixture(scope="session")
def imagenet_sample() -> Path:
    """The 1000-image ImageNet sample, for the checks that need every class (top-1, labels)."""
    path = imagenet_sample_path()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"ImageNet sample folder missing in CI: {path}")
        pytest.skip(f"ImageNet sample folder not found: {path}")
    return path


@pytest.fixture(scope="session")
def demo_photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The five demo photos as ImageNet-named JPEG files (no ImageNet sample needed)."""
    return write_demo_photos(tmp_path_factory.mktemp("demo-photos"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "ImageNet sample folder not found" in str(report.longrepr):
        WITHOUT_SAMPLE.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A loud line when tests could not run for want of the ImageNet sample, and how to."""
    if not WITHOUT_SAMPLE:
        return
    terminalreporter.section("NOT RUN: the ImageNet sample is missing", sep="!", red=True)
    terminalreporter.line(
        f"{len(WITHOUT_SAMPLE)} tests need the 1000-image ImageNet sample "
        f"(looked in {imagenet_sample_path()}):",
        red=True,
    )
    for nodeid in WITHOUT_SAMPLE:
        terminalreporter.line(f"  {nodeid}")
    terminalreporter.line(
        "Run them with CLICKME_IMAGENET_SAMPLE=/path/to/imagenet-sample make test "
        "(a folder of <synset>_<name>.JPEG files, one per class).",
        bold=True,
    )


def _create_postgres_database(name: str) -> str:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres_database(name: str) -> None:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of each kind, migrated to head once per test session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'clickme.db'}"
        upgrade(url)
        yield url
        return
    name = f"clickme_test_{os.getpid()}"
    url = _create_postgres_database(name)
    upgrade(url)
    yield url
    _drop_postgres_database(name)


# Every row deleted (children first) and the sequences restarted, in one round trip: on the few
# rows a test leaves, DELETE takes milliseconds where TRUNCATE (new files for every table and
# index, synced at commit) took half a second on a loaded machine, twice per test.
_EMPTY_POSTGRES = "; ".join(
    [
        *(f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)),
        "SELECT setval(quote_ident(sequencename), 1, false) FROM pg_sequences"
        " WHERE schemaname = current_schema()",
    ]
)


def _empty_all_tables(database: Database) -> None:
    with database.engine.begin() as connection:
        if database.engine.dialect.name == "postgresql":
            connection.exec_driver_sql(_EMPTY_POSTGRES)
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def database(migrated_database_url: str) -> Iterator[Database]:
    """A migrated, empty database (SQLite and PostgreSQL); emptied again after the test."""
    db = Database(migrated_database_url)
    _empty_all_tables(db)
    yield db
    _empty_all_tables(db)
    db.dispose()


@pytest.fixture
def settings(tmp_path: Path, migrated_database_url: str) -> Settings:
    """Demo settings pointing at a fresh data dir and the test database."""
    return Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)


@pytest.fixture(scope="session")
def models_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir shared across the session so the ONNX export happens once."""
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the process logs, captured (the root logger is restored afterwards)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
