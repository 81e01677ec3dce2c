"""Players: consent creates an anonymous player with a generated name, kept in a signed cookie."""

from fastapi.testclient import TestClient

from clickme.players.identity import PlayerToken, sign_player_token, verify_player_token


def test_first_visit_needs_consent(client: TestClient) -> None:
    response = client.get("/api/players/me")
    assert response.status_code == 401 and response.json()["error"]["code"] == "no_player"
    refused = client.post("/api/players", json={"consent": False})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "consent_required"


def test_consent_creates_a_named_player_with_an_httponly_cookie(client: TestClient) -> None:
    response = client.post("/api/players", json={"consent": True})
    assert response.status_code == 201
    player = response.json()
    assert player["display_name"] and player["total_score"] == 0 and player["rounds_played"] == 0
    cookie = response.headers["set-cookie"]
    assert "clickme_player=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/api/players/me").json()["id"] == player["id"]


def test_player_can_change_name_within_limits(client: TestClient) -> None:
    client.post("/api/players", json={"consent": True})
    renamed = client.patch("/api/players/me", json={"display_name": "  Ada  "})
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "Ada"
    for bad in ("", "x" * 41, "<script>"):
        response = client.patch("/api/players/me", json={"display_name": bad})
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_player_tokens_cannot_be_forged() -> None:
    token = sign_player_token("secret-a", 42)
    assert verify_player_token("secret-a", token) == PlayerToken(42, 0)
    assert verify_player_token("secret-b", token) is None
    assert verify_player_token("secret-a", token.replace("42.", "43.")) is None
    later = sign_player_token("secret-a", 42, epoch=3)
    assert verify_player_token("secret-a", later) == PlayerToken(42, 3)
    assert verify_player_token("secret-a", later.replace(".3.", ".2.")) is None
    assert verify_player_token("secret-a", later.replace(".3.", ".")) is None
    for junk in (None, "", "42", "x.y", "9" * 30 + ".abc"):
        assert verify_player_token("secret-a", junk) is None


def test_over_https_the_player_cookie_works_in_a_cross_site_frame(client: TestClient) -> None:
    """MTurk shows the game in a frame: SameSite=None, Secure and Partitioned (CHIPS) over
    HTTPS; the staff cookie stays strict; over plain HTTP (the demo) the player's is Lax."""
    secure = TestClient(client.app, base_url="https://testserver")
    created = secure.post("/api/players", json={"consent": True})
    assert created.status_code == 201
    cookie = created.headers["set-cookie"].lower()
    assert all(part in cookie for part in ("samesite=none", "secure", "partitioned", "httponly"))
    assert secure.get("/api/players/me").status_code == 200
    plain = client.post("/api/players", json={"consent": True}).headers["set-cookie"].lower()
    assert "samesite=lax" in plain and "partitioned" not in plain and "secure" not in plain
