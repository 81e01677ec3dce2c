"""The leaderboard in Redis gives the SQL query's answers: built from the database, kept up by
every commit that ends a round (and by none that rolls back), rebuilt when lost or missed."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from clickme.campaigns.service import change_state
from clickme.core.db import Database
from clickme.core.shared_store import redis_key
from clickme.game import service
from clickme.game.leaderboard import RedisLeaderboard, leaderboard
from clickme.game.models import Round
from clickme.maps.aggregate import MapSettings
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds

# Each player's scores on the two images; None: that round is still running.
SCORES = [(50, 50), (100, 0), (30, 20), (0, 0), (50, 0), (None, None), (None, 10)]
LIMITS = (1, 2, 3, 4, 10)


@pytest.fixture
def players(database: Database, tmp_path: Path) -> list[int]:
    """Players with rounds of the SCORES (ties straddle the short lists' cuts), and one without
    any round."""
    with database.session() as session:
        image_set, images = add_photos(session, tmp_path / "images", 2)
        campaign = change_state(session, add_campaign(session, image_set), "active")
        player_ids = add_players(session, len(SCORES) + 1)
        round_ids = add_rounds(session, campaign, images, player_ids[: len(SCORES)])
        per_image = len(SCORES)
        for index, scores in enumerate(SCORES):
            for image_index, score in enumerate(scores):
                session.execute(
                    update(Round)
                    .where(Round.id == round_ids[image_index * per_image + index])
                    .values(score=score or 0, outcome=None if score is None else "timeout")
                )
    return player_ids


@pytest.fixture
def board(
    database: Database, redis_client: redis.Redis, redis_prefix: str
) -> Iterator[RedisLeaderboard]:
    """A Redis leaderboard told of every round the database's commits end (as the runtime does)."""
    store = RedisLeaderboard(redis_client, redis_prefix, database)

    def ended(rounds: list[service.EndedRound]) -> None:
        for round_ in rounds:
            store.player_changed(round_.player_id)

    service.on_rounds_ended(database.sessionmaker, ended)
    yield store


def assert_same_as_sql(database: Database, store: RedisLeaderboard, players: list[int]) -> None:
    for limit in LIMITS:
        for me in [None, *players]:
            with database.session() as session:
                assert store.read(session, me, limit) == leaderboard(session, me, limit), (
                    limit,
                    me,
                )


def running_rounds(database: Database, player_id: int) -> list[int]:
    with database.session() as session:
        query = select(Round.id).where(Round.player_id == player_id, Round.outcome.is_(None))
        return list(session.scalars(query.order_by(Round.id)))


def test_built_from_the_database_it_answers_as_the_sql_query(
    database: Database, board: RedisLeaderboard, players: list[int]
) -> None:
    with database.session() as session:
        assert [entry.score for entry in leaderboard(session, None, 10).top] == [
            100, 100, 50, 50, 10, 0
        ]  # fmt: skip
    assert_same_as_sql(database, board, players)


def test_rounds_ended_later_reach_it_once_committed(
    database: Database, board: RedisLeaderboard, players: list[int]
) -> None:
    assert_same_as_sql(database, board, players)  # built
    late = players[5]
    first, second = running_rounds(database, late)
    with pytest.raises(RuntimeError), database.session() as session:
        facts = service.load_facts(session, first, late)
        assert service.record_success(session, facts, 700, MapSettings())[0] == "correct"
        raise RuntimeError("rolled back")
    assert_same_as_sql(database, board, players)
    with database.session() as session:
        facts = service.load_facts(session, first, late)
        service.record_success(session, facts, 700, MapSettings())
    assert_same_as_sql(database, board, players)
    with database.session() as session:
        service.skip_round(session, second, late, MapSettings())
    assert_same_as_sql(database, board, players)
    with database.session() as session:
        me = board.read(session, late, 1).me
    assert me is not None and (me.display_name, me.rounds) == ("player 5", 2) and me.score > 0


def test_a_lost_board_is_rebuilt_from_the_database(
    database: Database,
    board: RedisLeaderboard,
    players: list[int],
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    assert_same_as_sql(database, board, players)
    for key in redis_client.scan_iter(f"{redis_prefix}:*"):
        redis_client.delete(key)  # a Redis restart
    assert_same_as_sql(database, board, players)


def test_while_another_process_rebuilds_the_database_answers(
    database: Database,
    board: RedisLeaderboard,
    players: list[int],
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    redis_client.set(redis_key(redis_prefix, "leaderboard", "rebuilding"), "1")
    assert_same_as_sql(database, board, players)
    assert not redis_client.exists(redis_key(redis_prefix, "leaderboard", "ready"))


def test_an_update_that_missed_redis_is_caught_up_when_redis_answers_again(
    database: Database,
    board: RedisLeaderboard,
    players: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert_same_as_sql(database, board, players)

    def unreachable(_totals: list) -> None:
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(board, "_raise_totals", unreachable)
    late = players[6]
    with database.session() as session:  # the round's end is stored all the same
        service.skip_round(session, running_rounds(database, late)[0], late, MapSettings())
    monkeypatch.undo()
    assert_same_as_sql(database, board, players)
