"""The per-address limits count the client's address as a trusted proxy saw it
(CLICKME_FORWARDED_ALLOW_IPS), and the peer's own address when the peer is not trusted: an
X-Forwarded-For from anyone else changes nothing (by default no proxy is trusted)."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import select

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.players.identity import hash_ip
from clickme.players.models import Player
from clickme.scoring.scorer import Scorer

PROXY = "10.0.0.2"
SECRET = "k3Jd9xP2mQ7vL5tR8wZ1nB4cF6hY0aE2gU9iO3sK"
CLIENT_A = "203.0.113.7"
CLIENT_B = "198.51.100.9"


@contextmanager
def peer_client(
    game_settings: Settings, scorer: Scorer, **overrides: object
) -> Iterator[TestClient]:
    """The production app, two players a minute per address, reached from the proxy's address."""
    settings = Settings(
        **game_settings.model_dump(include={"data_dir", "database_url"}),
        environment="production",
        secret_key=SECRET,
        rate_players_per_min=2,
        **overrides,
    )
    app = create_app(settings, scorer=scorer)
    with TestClient(app, base_url="http://clickme.test", client=(PROXY, 40000)) as client:
        yield client


def consent(client: TestClient, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}
    client.cookies.clear()
    return client.post("/api/players", json={"consent": True}, headers=headers).status_code


def stored_address_hashes(database: Database) -> set[str | None]:
    with database.session() as session:
        return set(session.scalars(select(Player.ip_hash)))


def test_a_trusted_proxys_client_address_reaches_the_limits(
    game_settings: Settings, database: Database, shared_scorer: Scorer
) -> None:
    with peer_client(game_settings, shared_scorer, forwarded_allow_ips=PROXY) as client:
        assert [consent(client, CLIENT_A) for _ in range(3)] == [201, 201, 429]
        assert consent(client, f"{CLIENT_B}, {PROXY}") == 201  # the proxy itself is skipped
    assert stored_address_hashes(database) == {hash_ip(SECRET, CLIENT_A), hash_ip(SECRET, CLIENT_B)}


def test_an_untrusted_peers_forwarded_for_is_ignored(
    game_settings: Settings, database: Database, shared_scorer: Scorer
) -> None:
    """By default (no proxy trusted) and when others are trusted: the peer's address counts, and
    its X-Forwarded-Proto does not make plain HTTP pass for HTTPS."""
    for overrides in ({}, {"forwarded_allow_ips": "10.9.9.9, 192.168.0.0/16"}):
        with peer_client(game_settings, shared_scorer, **overrides) as client:
            assert consent(client, CLIENT_A) == 403  # plain HTTP, whatever the peer says
            client.base_url = client.base_url.copy_with(scheme="https")
            answers = [consent(client, address) for address in (CLIENT_A, CLIENT_B, PROXY)]
            assert answers == [201, 201, 429]
    assert stored_address_hashes(database) == {hash_ip(SECRET, PROXY)}
