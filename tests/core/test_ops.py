"""Operations: /healthz, /readyz naming the failed check, Prometheus /metrics, request ids and
one log line per request (JSON or text), with nothing secret in it."""

import io

import numpy as np
import orjson
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.logs import configure_logging
from clickme.players.identity import PLAYER_COOKIE
from clickme.scoring.batcher import BatcherClosedError
from clickme.scoring.scorer import Scorer
from tests.conftest import REDIS_TEST_URL
from tests.game.test_routes import send, start
from tests.live_server import free_port

CLOSED_PORT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:{port}/none"


def metric(client: TestClient, name: str, **labels: str) -> float:
    """A sample's value in /metrics (0 when absent)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_healthz_answers_without_asking_the_database(client: TestClient) -> None:
    runtime = client.app.state.runtime
    working, runtime.database = (
        runtime.database,
        Database(CLOSED_PORT_DATABASE.format(port=free_port())),
    )
    try:
        response = client.get("/healthz")
    finally:
        runtime.database.dispose()
        runtime.database = working
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_the_dnn(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "scorer": "ok"}}


def test_readyz_pings_redis_when_configured(game_settings: Settings, shared_scorer: Scorer) -> None:
    settings = game_settings.model_copy(update={"redis_url": REDIS_TEST_URL})
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "scorer": "ok", "redis": "ok"}


class DeadScorer:
    async def classify(self, image: np.ndarray) -> np.ndarray:
        raise BatcherClosedError("the batcher is not running")


def assert_unready(response, failed: str, because: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"][failed].startswith(f"failed: {because}")
    assert all(result == "ok" for check, result in body["checks"].items() if check != failed)


def test_readyz_names_a_database_that_does_not_answer(client: TestClient) -> None:
    runtime = client.app.state.runtime
    working, runtime.database = (
        runtime.database,
        Database(CLOSED_PORT_DATABASE.format(port=free_port())),
    )
    try:
        assert_unready(client.get("/readyz"), "database", "OperationalError")
    finally:
        runtime.database.dispose()
        runtime.database = working


def test_readyz_names_a_dnn_that_does_not_answer(client: TestClient) -> None:
    runtime = client.app.state.runtime
    working, runtime.scorer = runtime.scorer, DeadScorer()
    try:
        assert_unready(client.get("/readyz"), "scorer", "BatcherClosedError")
    finally:
        runtime.scorer = working


def test_readyz_names_a_redis_that_does_not_answer(
    game_settings: Settings, shared_scorer: Scorer
) -> None:
    settings = game_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}"})
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        assert_unready(client.get("/readyz"), "redis", "ConnectionError")


def test_metrics_count_requests_by_route_template_inference_rounds_and_points(
    player: TestClient,
) -> None:
    round_route = {"method": "GET", "route": "/api/rounds/{round_id}", "status": "404"}
    latency = "clickme_http_request_duration_seconds_count"
    before = {
        "round": metric(player, latency, **round_route),
        "unmatched": metric(player, latency, route="unmatched", status="404"),
        "batches": metric(player, "clickme_inference_batch_size_count"),
        "waits": metric(player, "clickme_inference_queue_wait_seconds_count"),
        "skipped": metric(player, "clickme_rounds_finished_total", outcome="skip"),
        "points": metric(player, "clickme_points_stored_total"),
    }
    assert player.get("/api/rounds/987654").status_code == 404
    assert player.get("/no/such/page").status_code == 404
    round_id = start(player)["round_id"]
    assert send(player, round_id, 1, [[10, 10, 0], [20, 12, 30], [30, 14, 60]]).status_code == 200
    assert player.post(f"/api/rounds/{round_id}/skip").status_code == 200
    assert metric(player, latency, **round_route) == before["round"] + 1
    assert metric(player, latency, route="unmatched", status="404") == before["unmatched"] + 1
    assert metric(player, "clickme_inference_batch_size_count") >= before["batches"] + 1
    assert metric(player, "clickme_inference_queue_wait_seconds_count") >= before["waits"] + 1
    assert metric(player, "clickme_inference_queue_depth") == 0
    assert metric(player, "clickme_rounds_finished_total", outcome="skip") == before["skipped"] + 1
    assert metric(player, "clickme_points_stored_total") == before["points"] + 3


def test_a_request_id_is_kept_when_tame_and_made_otherwise(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "edge-42.a"}).headers["X-Request-ID"]
        == "edge-42.a"
    )
    for untame in ("has spaces", "x" * 129, 'quote"s'):
        made = client.get("/healthz", headers={"X-Request-ID": untame}).headers["X-Request-ID"]
        assert made != untame and len(made) == 32
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


def test_json_logs_one_line_per_request_with_its_id_and_no_secrets(
    player: TestClient, log_lines: io.StringIO
) -> None:
    configure_logging("json", log_lines)
    round_id = start(player)["round_id"]
    response = player.get(f"/api/rounds/{round_id}", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200
    lines = [orjson.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == "req-1"]
    assert len(mine) == 1
    line = mine[0]
    assert line["level"] == "INFO" and line["logger"] == "clickme.requests"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/api/rounds/{round_id}", 200)
    assert line["duration_ms"] > 0 and line["time"].endswith("+00:00")
    assert player.cookies[PLAYER_COOKIE] not in log_lines.getvalue()


def test_text_logs_carry_the_request_id(client: TestClient, log_lines: io.StringIO) -> None:
    configure_logging("text", log_lines)
    client.get("/healthz", headers={"X-Request-ID": "req-2"})
    assert "INFO clickme.requests [req-2] GET /healthz 200" in log_lines.getvalue()


def test_logs_are_json_in_production_and_text_in_the_demo(settings: Settings) -> None:
    assert settings.resolved_log_format == "text"
    production = settings.model_copy(update={"environment": "production"})
    assert production.resolved_log_format == "json"
    assert settings.model_copy(update={"log_format": "json"}).resolved_log_format == "json"
