"""The reveal's hot path (``store_next_batch``, both databases): the round's next batch on time
is stored and committed without a session; anything else stores nothing and is left to
``store_batch``, which says why. And the statements a round's requests cost."""

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.sql import coercions

from clickme.campaigns.models import ImagePlays
from clickme.core import db
from clickme.core.db import Database
from clickme.game import service
from clickme.game.models import PointBatch, Round
from clickme.game.schemas import PointBatchIn
from clickme.maps.aggregate import MapSettings
from clickme.players.identity import PLAYER_COOKIE, verify_player_token
from clickme.players.models import Player
from tests.game.test_routes import send, start

MAX_POINTS = 500
RULE = MapSettings()
RULES = service.BatchRules(MAX_POINTS, 10**6, RULE, 60.0)


def player_id(client: TestClient) -> int:
    secret = client.app.state.runtime.settings.resolved_secret_key()  # type: ignore[attr-defined]
    token = verify_player_token(secret, client.cookies[PLAYER_COOKIE])
    assert token is not None
    return token.player_id


def started_facts(client: TestClient, database: Database) -> service.RoundFacts:
    """A new round of the client's player, its photo shown (its clock running)."""
    round_id = start(client)["round_id"]
    with database.session() as session:
        return service.load_facts(session, round_id, player_id(client))


def batch(seq: int) -> PointBatchIn:
    points = [[5, 5, 10 * seq], [6, 7, 10 * seq + 5]]
    return PointBatchIn(seq=seq, points=points, pointer_type="mouse")


def stored_seqs(database: Database, round_id: int) -> list[int]:
    with database.session() as session:
        query = select(PointBatch.seq).where(PointBatch.round_id == round_id)
        return sorted(session.scalars(query))


def store_next(database: Database, facts: service.RoundFacts, seq: int, epoch: int = 0):
    return service.store_next_batch(database, facts, batch(seq), MAX_POINTS, epoch)


def test_the_next_batch_is_stored_and_committed(player: TestClient, database: Database) -> None:
    facts = started_facts(player, database)
    first = store_next(database, facts, 1)
    second = store_next(database, facts, 2)
    assert first is not None and second is not None
    assert (second.seq, second.duplicate, second.outcome) == (2, False, None)
    assert [tuple(point) for point in second.points.tolist()] == [(5, 5, 20), (6, 7, 25)]
    assert stored_seqs(database, facts.round_id) == [1, 2]
    with database.session() as session:
        round_ = session.get_one(Round, facts.round_id)
        assert (round_.last_seq, round_.n_points, round_.pointer_type) == (2, 4, "mouse")


def test_a_repeat_or_a_gap_stores_nothing(player: TestClient, database: Database) -> None:
    facts = started_facts(player, database)
    assert store_next(database, facts, 1) is not None
    assert store_next(database, facts, 1) is None
    assert store_next(database, facts, 3) is None
    assert stored_seqs(database, facts.round_id) == [1]


def test_an_ended_round_or_a_forgotten_cookie_stores_nothing(
    player: TestClient, database: Database
) -> None:
    facts = started_facts(player, database)
    with database.session() as session:
        session.execute(update(Player).values(token_epoch=Player.token_epoch + 1))
    assert store_next(database, facts, 1, epoch=0) is None  # the old cookie
    assert store_next(database, facts, 1, epoch=1) is not None
    with database.session() as session:
        session.execute(update(Round).values(outcome="skip"))
    assert store_next(database, facts, 2, epoch=1) is None
    assert stored_seqs(database, facts.round_id) == [1]


def test_a_round_not_shown_or_out_of_time_is_left_to_store_batch(
    player: TestClient, database: Database
) -> None:
    facts = started_facts(player, database)
    assert store_next(database, replace(facts, shown_at=None), 1) is None
    assert facts.shown_at is not None
    late = replace(facts, shown_at=facts.shown_at - timedelta(milliseconds=facts.time_limit_ms))
    assert store_next(database, late, 1) is None
    assert stored_seqs(database, facts.round_id) == []
    with database.session() as session:
        timed_out = service.store_batch(session, late, batch(1), RULES, token_epoch=0)
    assert timed_out.outcome == "timeout"  # the batch that ends the round, as store_batch does


def test_the_next_batch_takes_no_session(
    player: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = started_facts(player, database)
    forbid_sessions(monkeypatch, database)
    stored = service.store_any_batch(database, facts, batch(1), RULES, token_epoch=0)
    assert stored.seq == 1 and not stored.duplicate
    monkeypatch.undo()
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(PointBatch)) == 1


def plays_of_its_image(database: Database, round_id: int) -> int:
    with database.session() as session:
        image_id = session.get_one(Round, round_id).image_id
        query = select(ImagePlays.plays).where(ImagePlays.image_id == image_id)
        return session.scalar(query) or 0


def test_a_win_keeping_its_play_is_one_statement_without_a_session(
    player: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round ended as correct with its time score in one UPDATE in autocommit, its end
    announced to the listeners as a commit's (the leaderboard, retirement); a second win
    changes nothing and is left to ``record_success``, which says it has ended."""
    facts = started_facts(player, database)
    assert store_next(database, facts, 1) is not None  # 2 points: it counts
    ended: list[service.EndedRound] = []
    service.on_rounds_ended(database.sessionmaker, ended.extend)
    won: list[tuple[str, int] | None] = []
    forbid_sessions(monkeypatch, database)
    statements = statements_on(
        database, lambda: won.append(service.record_success_now(database, facts, 700, RULE))
    )
    won.append(service.record_success_now(database, facts, 800, RULE))
    monkeypatch.undo()
    score = service.time_score(700, facts.time_limit_ms)
    assert won == [("correct", score), None]
    assert ended == [service.EndedRound(facts.round_id, facts.player_id, "correct")]
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("UPDATE")
    with database.session() as session:
        round_ = session.get_one(Round, facts.round_id)
        assert (round_.outcome, round_.score, round_.solved_ms) == ("correct", score, 700)
        assert service.record_success(session, facts, 800, RULE) == ("correct", score)
    assert plays_of_its_image(database, facts.round_id) == 1  # kept


def test_a_win_giving_its_play_back_is_left_to_record_success(
    player: TestClient, database: Database
) -> None:
    """Too few points to count (or a rule where wins do not count): the hot path changes
    nothing; ``record_success`` ends the round and gives its image's play back with it."""
    facts = started_facts(player, database)
    assert store_next(database, facts, 1) is not None  # 2 points
    strict = MapSettings(min_points=3)
    assert service.record_success_now(database, facts, 700, strict) is None
    assert (
        service.record_success_now(database, facts, 700, MapSettings(outcomes=("timeout",))) is None
    )
    with database.session() as session:
        assert session.get_one(Round, facts.round_id).outcome is None
        assert plays_of_its_image(database, facts.round_id) == 1
        assert service.record_success(session, facts, 700, strict)[0] == "correct"
    assert plays_of_its_image(database, facts.round_id) == 0


def statements_on(database: Database, action: Callable[[], object]) -> list[str]:
    """The SQL statements run on the database during the action: through its pooled engine and
    its autocommit ones, and on their DBAPI connections (``Database.rowcount_of``,
    ``each_changes_a_row`` and ``scalar_of``, which fire no engine event, run each one through
    ``db._on_cursor``)."""
    engines = (database.engine, database.autocommit_engine, database.lazy_commit_engine)
    statements: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    execute = db._on_cursor

    def noted_execute(engine: Engine, connection: Any, sql: str, values: Any, read: Any) -> Any:
        if engine in engines:
            statements.append(sql)
        return execute(engine, connection, sql, values, read)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    db._on_cursor = noted_execute
    try:
        action()
    finally:
        db._on_cursor = execute
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)
    return statements


def statements_during(client: TestClient, action: Callable[[], Response]) -> list[str]:
    """The SQL statements the app ran during the action (which must succeed)."""
    database = client.app.state.runtime.database  # type: ignore[attr-defined]
    responses: list[Response] = []
    statements = statements_on(database, lambda: responses.append(action()))
    assert responses[0].status_code in (200, 201), responses[0].text
    return statements


def forbid_sessions(monkeypatch: pytest.MonkeyPatch, database: Database) -> None:
    """Opening an ORM session on the database fails (until ``monkeypatch.undo()``)."""

    def no_session() -> None:
        raise AssertionError("a session was opened")

    monkeypatch.setattr(database, "session", no_session)


def test_after_the_start_call_a_batch_reads_nothing(player: TestClient) -> None:
    """The start call keeps the round's facts: its batches only write (the claim and the
    insert), on PostgreSQL in one statement."""
    round_id = start(player)["round_id"]
    statements = statements_during(player, lambda: send(player, round_id, 1, [[5, 5, 10]]))
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT")], statements
    engine = player.app.state.runtime.database.engine  # type: ignore[attr-defined]
    assert len(statements) == (1 if engine.dialect.name == "postgresql" else 2), statements


def test_a_batch_switches_no_connection_into_autocommit_and_back(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's one statement runs on connections that stay in autocommit (a pool of their
    own): none is switched for it and back, which cost a fifth of the store's CPU."""
    database = player.app.state.runtime.database  # type: ignore[attr-defined]
    round_id = start(player)["round_id"]
    assert send(player, round_id, 1, [[5, 5, 10]]).status_code == 200  # the pools' connections
    switched: list[str] = []
    for engine in (database.engine, database.autocommit_engine, database.lazy_commit_engine):
        real = engine.dialect.set_isolation_level

        def spy(dbapi_connection: object, level: str, real=real) -> None:  # type: ignore[no-untyped-def]
            switched.append(level)
            real(dbapi_connection, level)

        monkeypatch.setattr(engine.dialect, "set_isolation_level", spy)
    for seq in (2, 3):
        assert send(player, round_id, seq, [[5 + seq, 5, 10 + 100 * seq]]).status_code == 200
    assert switched == []


def test_the_start_call_is_one_statement_without_a_session(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock started, the cookie's epoch checked and the round's facts (with its DNN, just
    the columns they need) read back: on PostgreSQL in one statement in autocommit, on SQLite
    the UPDATE and one query, in one transaction; no ORM session either way (it cost the start
    call 5 round trips: BEGIN, the cookie's epoch, the facts, the clock, COMMIT)."""
    database = player.app.state.runtime.database  # type: ignore[attr-defined]
    response = player.post("/api/rounds", json={"viewport_width": 1280})
    round_id = response.json()["round_id"]
    forbid_sessions(monkeypatch, database)
    statements = statements_during(player, lambda: player.post(f"/api/rounds/{round_id}/start"))
    monkeypatch.undo()
    postgresql = database.engine.dialect.name == "postgresql"
    assert len(statements) == (1 if postgresql else 2), statements
    assert statements[0].lstrip().upper().startswith("WITH" if postgresql else "UPDATE")
    assert "players.token_epoch" in statements[0], statements
    facts = statements[-1]
    assert "images.file_name" in facts and "images.sha256" not in facts, facts
    assert "rounds.last_seq" not in facts, facts


def test_a_new_round_reads_its_campaign_dnn_and_cookie_once_in_one_query(
    player: TestClient,
) -> None:
    """The campaign, its DNN and the player's token epoch (the cookie's check) in one query:
    the epoch has no statement of its own."""
    body = {"viewport_width": 1280}
    statements = statements_during(player, lambda: player.post("/api/rounds", json=body))
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    reads = [s for s in selects if "dnn_models" in s or "campaigns" in s.split("WHERE")[0]]
    assert len(reads) == 1 and "JOIN dnn_models" in reads[0], statements
    assert "players.token_epoch" in reads[0] and reads[0] == statements[0], statements
    assert not [s for s in statements[1:] if "token_epoch" in s], statements


def test_a_new_round_refuses_an_old_cookie_before_anything_else(player: TestClient) -> None:
    """A forgotten player's old cookie is refused (401) even for a campaign that does not exist
    (404 otherwise) or is not active (409 otherwise): the cookie is checked first."""
    database = player.app.state.runtime.database  # type: ignore[attr-defined]
    assert player.post("/api/rounds", json={"campaign": "no-such"}).status_code == 404
    with database.session() as session:
        session.execute(update(Player).values(token_epoch=Player.token_epoch + 1))
    for campaign in ("no-such", None):
        refused = player.post("/api/rounds", json={"campaign": campaign})
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "no_player"


def test_a_skip_reads_the_round_once_and_the_player_not_at_all(player: TestClient) -> None:
    """The round with the cookie's token epoch (one query), its end (which returns what the
    play's give-back reads), its play given back, the player's total: the ended round is not
    read again, the player's row not at all, the epoch in no statement of its own."""
    round_id = start(player)["round_id"]
    answers: list[dict] = []

    def skip() -> Response:
        response = player.post(f"/api/rounds/{round_id}/skip")
        answers.append(response.json())
        return response

    statements = statements_during(player, skip)
    assert len(statements) == 4, statements
    assert "players.token_epoch" in statements[0] and "FROM rounds" in statements[0], statements
    assert not [s for s in statements[1:] if "token_epoch" in s], statements
    assert not [s for s in statements if s.lstrip().startswith("SELECT players.id")], statements
    skip()  # again: answered as ended
    assert [(a["outcome"], a["score"]) for a in answers] == [("skip", 0), ("skip", 0)]


def test_a_skip_refuses_an_old_cookie_before_anything_else(client: TestClient) -> None:
    """A forgotten player's old cookie is refused (401) on a skip of their own round, of
    another player's and of none (404 with a current cookie): the cookie is checked first, and
    the round is not ended."""
    client.post("/api/players", json={"consent": True})
    others = start(client)["round_id"]
    client.cookies.clear()
    client.post("/api/players", json={"consent": True})
    own = start(client)["round_id"]
    for round_id in (others, 987654):
        assert client.post(f"/api/rounds/{round_id}/skip").status_code == 404
    database = client.app.state.runtime.database  # type: ignore[attr-defined]
    with database.session() as session:
        session.execute(update(Player).where(Player.id == player_id(client)).values(token_epoch=1))
    for round_id in (own, others, 987654):
        refused = client.post(f"/api/rounds/{round_id}/skip")
        assert refused.status_code == 401, (round_id, refused.text)
        assert refused.json()["error"]["code"] == "no_player"
    with database.session() as session:
        assert session.scalars(select(Round.outcome)).all() == [None, None]


def test_a_repeat_round_reads_its_photo_in_one_query(player: TestClient) -> None:
    """After every demo photo, the next round is a repeat: the photo played least recently is
    found and read in one query, the campaign with its DNN in another; why no new photo is left
    in one (the campaign's open photos and those the player has not seen, counted together);
    the player's photos are not counted at all where the campaign sets no limit on them."""
    for _ in range(5):
        round_id = start(player)["round_id"]
        assert player.post(f"/api/rounds/{round_id}/skip").status_code == 200
    body = {"viewport_width": 1280}
    answers: list[dict] = []

    def new_round() -> Response:
        response = player.post("/api/rounds", json=body)
        answers.append(response.json())
        return response

    statements = statements_during(player, new_round)
    assert answers[0]["repeat"], answers
    assert len([s for s in statements if s.lstrip().startswith("SELECT images.")]) == 1
    assert len([s for s in statements if "count(" in s.lower()]) == 1, statements
    assert len(statements) == 7, [" ".join(s.split())[:70] for s in statements]


def expressions_built_during(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> int:
    """How many SQL expression parts were built during the action, which must succeed
    (SQLAlchemy coerces every part of a statement being built: a statement built once and
    kept costs nothing here)."""
    built = 0
    expect = coercions.expect

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal built
        built += 1
        return expect(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(coercions, "expect", counting)
        outcome = action()
    if isinstance(outcome, Response):
        assert outcome.status_code in (200, 201), outcome.text
    return built


def test_a_rounds_requests_run_statements_built_once(
    player: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round's statements (the cookie's player, the held rounds, the assignment, the facts,
    the clock, the batch) are built once with bound parameters and kept: building them anew
    cost each round start more CPU than running them. What is left: the round's INSERT (the
    ORM's unit of work)."""
    for _ in range(6):  # every demo photo, and a repeat: each statement built once
        round_id = start(player)["round_id"]
        send(player, round_id, 1, [[5, 5, 10]])
        assert player.post(f"/api/rounds/{round_id}/skip").status_code == 200
    body = {"viewport_width": 1280}
    started: list[Response] = []

    def new_round() -> Response:
        started.append(player.post("/api/rounds", json=body))
        return started[-1]

    built = {"start": expressions_built_during(monkeypatch, new_round)}
    round_id = started[0].json()["round_id"]
    built["start call"] = expressions_built_during(
        monkeypatch, lambda: player.post(f"/api/rounds/{round_id}/start")
    )
    send(player, round_id, 1, [[5, 5, 10]])  # a round's first batch may compile its statement
    built["batch"] = expressions_built_during(
        monkeypatch, lambda: send(player, round_id, 2, [[6, 5, 20]])
    )
    built["skip"] = expressions_built_during(
        monkeypatch, lambda: player.post(f"/api/rounds/{round_id}/skip")
    )
    assert built["start call"] == built["batch"] == 0, built
    assert built["start"] <= 5 and built["skip"] <= 5, built


def test_a_reveal_waits_for_its_commits_wal_unless_set_not_to(
    player: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a round's next batch is acknowledged once its commit is on disk, unless
    ``strokes_synchronous_commit`` is off (then the round's end flushes it with its own)."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's store commits every batch alike (WAL, synchronous NORMAL)")
    durable: list[bool] = []
    rowcount_of = Database.rowcount_of

    def recorded(self: Database, statement: Any, parameters: dict, durable_: bool = True) -> int:
        durable.append(durable_)
        return rowcount_of(self, statement, parameters, durable_)

    monkeypatch.setattr(Database, "rowcount_of", recorded)
    round_id = start(player)["round_id"]
    assert send(player, round_id, 1, [[5, 5, 10]]).status_code == 200
    runtime = player.app.state.runtime  # type: ignore[attr-defined]
    runtime.settings = runtime.settings.model_copy(update={"strokes_synchronous_commit": False})
    assert send(player, round_id, 2, [[6, 6, 60]]).status_code == 200
    assert durable == [True, False]
    assert stored_seqs(database, round_id) == [1, 2]
