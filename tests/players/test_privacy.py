"""`clickme players forget ID`: a player's personal data cleared, their strokes kept."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from clickme.cli import app
from clickme.core.config import Settings, get_settings
from clickme.core.db import Database
from clickme.game.models import PointBatch, Round
from clickme.players.identity import PLAYER_COOKIE
from clickme.players.models import Player
from clickme.players.privacy import PERSONAL_COLUMNS
from tests.players.painting import box_stroke, play

PROLIFIC = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "st-1", "SESSION_ID": "se_1"}


@pytest.fixture
def cli_env(game_settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLICKME_DATA_DIR", str(game_settings.data_dir))
    monkeypatch.setenv("CLICKME_DATABASE_URL", game_settings.resolved_database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def strokes(database: Database, player_id: int) -> tuple[int, int]:
    with database.session() as session:
        rounds = session.scalar(select(func.count(Round.id)).where(Round.player_id == player_id))
        batches = session.scalar(
            select(func.count(PointBatch.id))
            .join(Round, Round.id == PointBatch.round_id)
            .where(Round.player_id == player_id)
        )
    return int(rounds or 0), int(batches or 0)


def test_forgetting_clears_personal_data_and_keeps_the_strokes(
    client: TestClient, database: Database, cli_env: CliRunner
) -> None:
    created = client.post(
        "/api/players", json={"consent": True, **PROLIFIC}, headers={"User-Agent": "Firefox/140"}
    )
    player_id = created.json()["id"]
    assert client.patch("/api/players/me", json={"display_name": "Ada L"}).status_code == 200
    play(client, box_stroke(0.3, 0.3, 0.4))
    before = strokes(database, player_id)
    with database.session() as session:
        player = session.get_one(Player, player_id)
        assert player.external_id and player.ip_hash and player.user_agent

    old_cookie = client.cookies.get(PLAYER_COOKIE)
    assert client.get("/api/players/me").status_code == 200
    result = cli_env.invoke(app, ["players", "forget", str(player_id)])
    assert result.exit_code == 0, result.output
    assert f"player {player_id} forgotten" in result.output
    # The old cookie no longer stands for the player, on any route.
    client.cookies.clear()
    client.cookies.set(PLAYER_COOKIE, old_cookie)
    for method, path in (("GET", "/api/players/me"), ("POST", "/api/rounds")):
        refused = client.request(method, path, json={} if method == "POST" else None)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "no_player"
    assert client.get("/api/leaderboard").json()["me"] is None

    with database.session() as session:
        player = session.get_one(Player, player_id)
        assert all(getattr(player, column) is None for column in PERSONAL_COLUMNS)
        assert player.display_name != "Ada L"
    assert strokes(database, player_id) == before and before[0] >= 1 and before[1] >= 1
    # The participant is no longer recognised: coming back makes a new player.
    client.cookies.clear()
    again = client.post("/api/players", json={"consent": True, **PROLIFIC})
    assert again.status_code == 201 and again.json()["id"] != player_id


def test_forgetting_an_unknown_player_fails_clearly(cli_env: CliRunner, database: Database) -> None:
    result = cli_env.invoke(app, ["players", "forget", "999999"])
    assert result.exit_code == 1
    assert "no player 999999" in result.output
