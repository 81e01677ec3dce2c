"""Production refuses to start on a missing, short or placeholder secret, or without a database;
the demo needs nothing; trusted proxies are addresses or networks; a key needs its certificate."""

import pytest
from pydantic import ValidationError

from clickme.core.config import Settings

DATABASE = "postgresql+psycopg://postgres@127.0.0.1/clickme"
GOOD_SECRET = "k3Jd9xP2mQ7vL5tR8wZ1nB4cF6hY0aE2gU9iO3sK"


def production(**values: object) -> Settings:
    return Settings(environment="production", **values)


def test_production_starts_with_its_own_secret_and_database() -> None:
    settings = production(secret_key=GOOD_SECRET, database_url=DATABASE)
    assert settings.resolved_secret_key() == GOOD_SECRET


@pytest.mark.parametrize(
    "secret",
    [None, "", "tooShort1", "x" * 40, "change-me-change-me-change-me-change-me",
     "my-super-secret-key-for-production-0123", "abababababababababababababababababab"],
)  # fmt: skip
def test_production_refuses_a_missing_short_or_placeholder_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="CLICKME_SECRET_KEY"):
        production(secret_key=secret, database_url=DATABASE)


def test_production_refuses_to_run_without_a_database() -> None:
    with pytest.raises(ValidationError, match="CLICKME_DATABASE_URL"):
        production(secret_key=GOOD_SECRET)


def test_the_demo_needs_no_configuration(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.environment == "demo"
    assert len(settings.resolved_secret_key()) >= 32
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_export_jobs_are_not_called_silent_within_three_beats(tmp_path) -> None:
    assert Settings(data_dir=tmp_path, export_heartbeat_s=2, export_stale_after_s=6)
    with pytest.raises(ValidationError, match="CLICKME_EXPORT_STALE_AFTER_S"):
        Settings(data_dir=tmp_path, export_heartbeat_s=5, export_stale_after_s=10)


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings().trusted_proxies == []  # by default no proxy is trusted
    settings = Settings(forwarded_allow_ips="172.30.57.10, 10.0.0.0/8,::1")
    assert settings.trusted_proxies == ["172.30.57.10", "10.0.0.0/8", "::1"]
    assert Settings(forwarded_allow_ips="*").trusted_proxies == ["*"]
    with pytest.raises(ValidationError, match="proxy"):
        Settings(forwarded_allow_ips="proxy")  # a name: uvicorn would never match it


def test_a_key_needs_its_certificate() -> None:
    with pytest.raises(ValidationError, match="CLICKME_SSL_CERTFILE"):
        Settings(ssl_keyfile="key.pem")
