"""The app factory's choices that no route shows: FastAPI's native OpenTelemetry."""

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.scoring.scorer import Scorer


@pytest.mark.parametrize("opentelemetry", [False, True])
def test_native_telemetry_asks_the_providers_only_when_configured(
    game_settings: Settings,
    shared_scorer: Scorer,
    monkeypatch: pytest.MonkeyPatch,
    opentelemetry: bool,
) -> None:
    """Off (the default), a request never looks up OpenTelemetry's global providers (FastAPI's
    per-request check cost about 0.1 ms after an idle pause); ``CLICKME_OPENTELEMETRY`` turns
    it back on."""
    asked = []
    provider = trace.get_tracer_provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: asked.append(1) or provider)
    settings = game_settings.model_copy(update={"opentelemetry": opentelemetry})
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        asked.clear()  # whatever starting up looked up
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
    assert len(asked) >= 3 if opentelemetry else asked == []
