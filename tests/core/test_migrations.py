"""One Alembic history for SQLite and PostgreSQL: empty to head and back; it matches the models."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from clickme.core.db import make_engine
from clickme.core.migrate import downgrade, upgrade
from clickme.tables import Base
from tests.conftest import _create_postgres_database, _drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = "clickme_migrations_test"
    yield _create_postgres_database(name)
    _drop_postgres_database(name)


def table_names(url: str) -> set[str]:
    engine = make_engine(url, pooled=False)
    names = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return names


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    assert table_names(empty_database_url) == set(Base.metadata.tables)
    downgrade(empty_database_url, "base")
    assert table_names(empty_database_url) == set()
    upgrade(empty_database_url)
    assert table_names(empty_database_url) == set(Base.metadata.tables)


def test_head_matches_the_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url, pooled=False)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == [], "models changed without a migration: " + repr(differences)
