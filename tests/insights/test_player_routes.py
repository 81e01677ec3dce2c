"""Staff review of players: the table with measures and flags, exclusions kept with who and why,
flags refreshed and resolved; and `clickme players flag`."""

from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from clickme.cli import app
from clickme.core.config import Settings, get_settings
from clickme.core.db import Database
from clickme.players import service
from tests.accounts.staff import add_staff_user, staff_headers
from tests.players.painting import box_stroke, new_player, play

EVERYTHING = box_stroke(0.0, 0.0, 1.0)
CENTRE = box_stroke(0.3, 0.3, 0.4)


class Staff(NamedTuple):
    admin: dict[str, str]
    researcher: dict[str, str]
    admin_id: int


@pytest.fixture
def staff(database: Database) -> Staff:
    """Signed-in headers of an admin and of a researcher."""
    admin_id = add_staff_user(database, "admin@example.org", "admin")
    add_staff_user(database, "researcher@example.org", "researcher")
    return Staff(
        admin=staff_headers(database, "admin@example.org"),
        researcher=staff_headers(database, "researcher@example.org"),
        admin_id=admin_id,
    )


def as_staff(client: TestClient, headers: dict[str, str]) -> TestClient:
    client.cookies.clear()
    client.headers.update(headers)
    return client


def test_staff_see_players_with_measures_flags_and_pages(client: TestClient, staff: Staff) -> None:
    painter = new_player(client)
    play(client, EVERYTHING)
    careful = new_player(client)
    play(client, CENTRE)
    admin = as_staff(client, staff.admin)
    report = admin.post("/api/admin/players/flags/refresh")
    assert report.status_code == 200 and report.json() == {"players": 2, "raised": 1, "cleared": 0}

    researcher = as_staff(client, staff.researcher)
    listed = researcher.get("/api/admin/players").json()
    assert listed["total"] == 2 and [p["id"] for p in listed["players"]] == [painter, careful]
    first = listed["players"][0]
    assert first["measures"]["rounds"] == 1 and first["measures"]["mean_revealed"] > 0.8
    assert [f["kind"] for f in first["flags"]] == ["paints_everything"]
    assert first["flags"][0]["reason"] and not first["flags"][0]["resolved"]
    assert first["exclusion"] is None and first["source"] is None

    flagged = researcher.get("/api/admin/players", params={"flagged": True}).json()
    assert [p["id"] for p in flagged["players"]] == [painter]
    second_page = researcher.get("/api/admin/players", params={"page": 2, "per_page": 1}).json()
    assert [p["id"] for p in second_page["players"]] == [careful] and second_page["total"] == 2
    assert researcher.get("/api/admin/players", params={"per_page": 0}).status_code == 422


def second_campaign(client: TestClient, admin_headers: dict[str, str]) -> str:
    """An active campaign on the default campaign's image set and model, made by an admin
    whose headers the client then drops; its slug."""
    admin = as_staff(client, admin_headers)
    [default] = admin.get("/api/admin/campaigns").json()
    created = admin.post(
        "/api/admin/campaigns",
        json={"name": "Second", "slug": "second", "image_set_id": default["image_set_id"],
              "model_id": default["model_id"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    started = admin.post(
        f"/api/admin/campaigns/{created.json()['id']}/state", json={"state": "active"}
    )
    assert started.status_code == 200, started.text
    for header in admin_headers:
        del client.headers[header]
    return "second"


def test_staff_filter_players_by_campaign_and_see_a_players_rounds(
    client: TestClient, staff: Staff
) -> None:
    first = new_player(client)
    played = play(client, CENTRE)
    slug = second_campaign(client, staff.admin)
    second = new_player(client)
    started = client.post("/api/rounds", json={"campaign": slug})
    assert started.status_code == 201, started.text

    researcher = as_staff(client, staff.researcher)
    campaigns = {c["slug"]: c["id"] for c in researcher.get("/api/admin/campaigns").json()}

    def ids(campaign_id: int) -> list[int]:
        page = researcher.get("/api/admin/players", params={"campaign": campaign_id}).json()
        return [player["id"] for player in page["players"]]

    assert ids(campaigns[slug]) == [second]
    assert ids(next(i for s, i in campaigns.items() if s != slug)) == [first]
    assert researcher.get("/api/admin/players").json()["total"] == 2

    detail = researcher.get(f"/api/admin/players/{first}").json()
    assert detail["id"] == first and detail["measures"]["rounds"] == 1
    [round_] = detail["rounds"]
    assert round_["id"] == played["round_id"] and round_["image_id"] == played["image"]["id"]
    assert round_["class_name"] == played["class_name"] and round_["outcome"] is not None
    assert round_["n_points"] > 10 and round_["duration_ms"] >= 0 and round_["is_repeat"] is False
    running = researcher.get(f"/api/admin/players/{second}").json()["rounds"]
    assert [r["campaign_name"] for r in running] == ["Second"]
    assert running[0]["outcome"] is None and running[0]["duration_ms"] is None
    missing = researcher.get("/api/admin/players/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "player_not_found"


def test_staff_replay_a_rounds_points_in_order(client: TestClient, staff: Staff) -> None:
    new_player(client)
    played = play(client, CENTRE)
    sent = CENTRE(played)
    researcher = as_staff(client, staff.researcher)
    replay = researcher.get(f"/api/admin/rounds/{played['round_id']}/points").json()
    assert replay["round_id"] == played["round_id"] and replay["image"] == played["image"]
    assert replay["brush"] == played["brush"] and replay["outcome"] is not None
    assert len(replay["points"]) == len(sent)
    for (x, y, t), (sent_x, sent_y, sent_t) in zip(replay["points"], sent, strict=True):
        assert t == sent_t and abs(x - sent_x) < 1e-3 and abs(y - sent_y) < 1e-3
    missing = researcher.get("/api/admin/rounds/999999/points")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "round_not_found"


def test_admins_exclude_players_with_a_reason_and_can_take_it_back(
    client: TestClient, database: Database, staff: Staff
) -> None:
    player_id = new_player(client)
    admin = as_staff(client, staff.admin)
    path = f"/api/admin/players/{player_id}/exclude"
    assert admin.post(path, json={"reason": "  "}).status_code == 422
    excluded = admin.post(path, json={"reason": "painted everything"})
    assert excluded.status_code == 201, excluded.text
    assert excluded.json()["excluded_by"] == staff.admin_id
    assert excluded.json()["reason"] == "painted everything"
    assert admin.post(path, json={"reason": "again"}).json()["error"]["code"] == "already_excluded"
    with database.session() as session:
        assert service.excluded_player_ids(session) == {player_id}
    listed = admin.get("/api/admin/players").json()["players"][0]
    assert listed["exclusion"]["reason"] == "painted everything"

    assert admin.delete(path).status_code == 204
    assert admin.delete(path).json()["error"]["code"] == "not_excluded"
    with database.session() as session:
        assert service.excluded_player_ids(session) == set()
    missing = admin.post("/api/admin/players/999999/exclude", json={"reason": "who?"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "player_not_found"


def test_admins_resolve_flags_and_researchers_cannot(client: TestClient, staff: Staff) -> None:
    painter = new_player(client)
    play(client, EVERYTHING)
    admin = as_staff(client, staff.admin)
    admin.post("/api/admin/players/flags/refresh")
    path = f"/api/admin/players/{painter}/flags/paints_everything/resolve"
    researcher = as_staff(client, staff.researcher)
    assert researcher.post(path).status_code == 403
    assert (
        researcher.post(f"/api/admin/players/{painter}/exclude", json={"reason": "x"}).status_code
        == 403
    )
    admin = as_staff(client, staff.admin)
    assert admin.post(path).json()["resolved"] is True
    assert admin.post("/api/admin/players/flags/refresh").json()["raised"] == 0
    unknown = admin.post(f"/api/admin/players/{painter}/flags/nonsense/resolve")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "flag_not_found"


def test_the_flag_command_is_idempotent(
    client: TestClient, game_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_player(client)
    play(client, EVERYTHING)
    monkeypatch.setenv("CLICKME_DATA_DIR", str(game_settings.data_dir))
    monkeypatch.setenv("CLICKME_DATABASE_URL", game_settings.resolved_database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["players", "flag"])
        assert first.exit_code == 0, first.output
        assert "1 players measured: 1 flags raised, 0 cleared" in first.output
        again = runner.invoke(app, ["players", "flag"])
        assert "1 players measured: 0 flags raised, 0 cleared" in again.output
    finally:
        get_settings.cache_clear()
