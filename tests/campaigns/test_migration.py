"""Migrations 0003, 0011 and 0013 on a database that already holds a campaign and its rounds."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from clickme.core.db import make_engine
from clickme.core.migrate import downgrade, upgrade
from tests.conftest import _create_postgres_database, _drop_postgres_database

ROWS = """
INSERT INTO image_sets (id, name, description, created_at) VALUES (1, 'demo', '', '2026-01-01');
INSERT INTO dnn_models (id, name, version, architecture, weights_sha256, created_at)
    VALUES (1, 'm', '1', 'a', 'x', '2026-01-01');
INSERT INTO images (id, image_set_id, sha256, file_name, original_name, width, height, synset,
    class_index, created_at) VALUES
    (1, 1, 'a', 'a.jpg', 'a.jpg', 10, 10, 'n01443537', 1, '2026-01-01'),
    (2, 1, 'b', 'b.jpg', 'b.jpg', 10, 10, 'n01443537', 1, '2026-01-01');
INSERT INTO campaigns (id, slug, name, state, version, image_set_id, model_id, top_k,
    time_limit_ms, brush_radius, brush_softness, reveal_background, background_blur_sigma,
    created_at) VALUES (1, 'default', 'ClickMe', 'active', 2, 1, 1, 5, 7000, 0.06, 0.5, 'blur',
    12.0, '2026-01-01');
INSERT INTO players (id, display_name, consented_at, created_at)
    VALUES (1, 'p', '2026-01-01', '2026-01-01'), (2, 'q', '2026-01-01', '2026-01-01');
INSERT INTO rounds (player_id, campaign_id, campaign_version, image_id, model_id, model_version,
    started_at, outcome, score, last_seq, n_points) VALUES
    (1, 1, 1, 1, 1, '1', '2026-01-01', 'correct', 50, 0, 0),
    (2, 1, 2, 1, 1, '1', '2026-01-01', 'skip', 0, 0, 0),
    (1, 1, 2, 2, 1, '1', '2026-01-01', NULL, 0, 0, 0);
"""


def insert_rows(url: str, *more: tuple[str, object]) -> None:
    """The campaign, its images, players and rounds (``ROWS``), then ``more`` statements with
    their parameters, in one transaction."""
    engine = make_engine(url, pooled=False)
    with engine.begin() as connection:
        for statement in ROWS.split(";"):
            if statement.strip():
                connection.execute(sa.text(statement))
        for statement, parameters in more:
            connection.execute(sa.text(statement), parameters)  # type: ignore[arg-type]
    engine.dispose()


def migrated_with_rows(tmp_path: Path) -> str:
    """A SQLite database at 0002 holding a campaign and its rounds, then migrated to 0003."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    insert_rows(url)
    upgrade(url, "0003")
    return url


def test_existing_campaigns_get_versions_and_play_counters(tmp_path: Path) -> None:
    url = migrated_with_rows(tmp_path)
    engine = make_engine(url, pooled=False)
    with engine.connect() as connection:
        versions = connection.execute(
            sa.text("SELECT version, settings FROM campaign_versions ORDER BY version")
        ).all()
        plays = connection.execute(
            sa.text("SELECT image_id, plays FROM image_plays ORDER BY image_id")
        ).all()
        wanted = connection.scalar(sa.text("SELECT plays_wanted_per_image FROM campaigns"))
    engine.dispose()
    assert [v for v, _settings in versions] == [1, 2]
    assert '"time_limit_ms": 7000' in versions[0][1]
    assert plays == [(1, 1), (2, 1)]  # the skip gave its play back; the round in flight counts
    assert wanted == 100_000  # the demo campaign never retires its images


def test_downgrade_keeps_the_rounds(tmp_path: Path) -> None:
    url = migrated_with_rows(tmp_path)
    downgrade(url, "0002")
    engine = make_engine(url, pooled=False)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM rounds")) == 3
        columns = {c["name"] for c in sa.inspect(connection).get_columns("campaigns")}
    engine.dispose()
    assert "plays_wanted_per_image" not in columns


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def empty_database(engine_kind: str, tmp_path: Path, revision: str) -> Iterator[str]:
    """An empty database of the kind, migrated to the revision (dropped after, on PostgreSQL)."""
    name = f"clickme_migration_{revision}_test"
    if engine_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = _create_postgres_database(name)
    upgrade(url, revision)
    yield url
    if engine_kind == "postgresql":
        _drop_postgres_database(name)


@pytest.fixture
def database_at_0010(engine_kind: str, tmp_path: Path) -> Iterator[str]:
    yield from empty_database(engine_kind, tmp_path, "0010")


@pytest.fixture
def database_at_0012(engine_kind: str, tmp_path: Path) -> Iterator[str]:
    yield from empty_database(engine_kind, tmp_path, "0012")


STUDY = """INSERT INTO campaigns (id, slug, name, state, version, image_set_id, model_id, top_k,
    time_limit_ms, brush_radius, brush_softness, reveal_background, background_blur_sigma,
    created_at) VALUES (2, 'study', 'S', 'draft', 1, 1, 1, 5, 7000, 0.06, 0.5, 'blur', 12.0,
    '2026-01-01')"""
REPEAT_ROUND = """INSERT INTO rounds (player_id, campaign_id, campaign_version, image_id, model_id,
    model_version, started_at, score, last_seq, n_points, is_repeat)
    VALUES (1, 1, 1, 1, 1, '1', '2026-01-02', 0, 0, 0, {})"""


def test_0011_turns_repeats_on_for_the_demo_and_lets_them_repeat_an_image(
    database_at_0010: str,
) -> None:
    url = database_at_0010
    insert_rows(url, (STUDY, {}))
    upgrade(url, "0011")
    engine = make_engine(url, pooled=False)
    with engine.begin() as connection:
        flags = connection.execute(
            sa.text("SELECT slug, repeat_when_exhausted FROM campaigns ORDER BY id")
        ).all()
        assert [(slug, bool(on)) for slug, on in flags] == [("default", True), ("study", False)]
        assert not connection.scalar(sa.text("SELECT count(*) FROM rounds WHERE is_repeat"))
        repeat_id = connection.execute(
            sa.text(REPEAT_ROUND.format("true") + " RETURNING id")
        ).scalar_one()  # player 1 played image 1 in campaign 1: a repeat may follow
        connection.execute(
            sa.text(
                "INSERT INTO point_batches (round_id, seq, n_points, data, received_ms,"
                " received_at) VALUES (:round_id, 1, 0, :data, 0, '2026-01-02')"
            ),
            {"round_id": repeat_id, "data": b""},
        )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text(REPEAT_ROUND.format("false")))  # but never a second first
    engine.dispose()
    downgrade(url, "0010")
    engine = make_engine(url, pooled=False)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM rounds")) == 3
        assert connection.scalar(sa.text("SELECT count(*) FROM point_batches")) == 0
        columns = {c["name"] for c in sa.inspect(connection).get_columns("rounds")}
    engine.dispose()
    assert "is_repeat" not in columns


COUNTERS = 40
MORE_IMAGES = """INSERT INTO images (id, image_set_id, sha256, file_name, original_name, width,
    height, synset, class_index, created_at)
    VALUES (:id, 1, :sha, 'x.jpg', 'x.jpg', 10, 10, 'n01443537', 1, '2026-01-01')"""
COUNTER = "INSERT INTO image_plays (campaign_id, image_id, plays) VALUES (1, :image, :plays)"


def test_0013_draws_a_shuffle_for_every_counter_and_indexes_the_order(
    database_at_0012: str,
) -> None:
    url = database_at_0012
    images = [{"id": i, "sha": f"s{i}"} for i in range(3, COUNTERS + 1)]
    counters = [{"image": i, "plays": i % 3} for i in range(1, COUNTERS)]
    insert_rows(url, (MORE_IMAGES, images), (COUNTER, counters))
    upgrade(url, "0013")
    engine = make_engine(url, pooled=False)
    with engine.begin() as connection:
        connection.execute(sa.text(COUNTER), {"image": COUNTERS, "plays": 0})  # a new counter
        rows = connection.execute(
            sa.text("SELECT image_id, plays, shuffle FROM image_plays ORDER BY image_id")
        ).all()
        indexes = {
            i["name"]: i["column_names"] for i in sa.inspect(connection).get_indexes("image_plays")
        }
    engine.dispose()
    assert [(image, plays) for image, plays, _ in rows] == [
        (i, i % 3 if i < COUNTERS else 0) for i in range(1, COUNTERS + 1)
    ]  # the counters kept
    shuffles = [shuffle for _, _, shuffle in rows]
    assert len(set(shuffles)) == COUNTERS  # each drawn on its own
    assert all(0 <= shuffle < 1 for shuffle in shuffles)  # in [0, 1) on both databases
    assert shuffles != sorted(shuffles)  # at random, not in the images' order (1 in 40!)
    assert indexes["ix_image_plays_order"] == ["campaign_id", "plays", "shuffle"]
    downgrade(url, "0012")
    engine = make_engine(url, pooled=False)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM image_plays")) == COUNTERS
        columns = {c["name"] for c in sa.inspect(connection).get_columns("image_plays")}
    engine.dispose()
    assert "shuffle" not in columns
