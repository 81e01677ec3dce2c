"""Rate limits: exact sliding windows per key, and 429 rate_limited with Retry-After on the
game routes (point batches per player, rounds and new players per IP); the same behaviour in
this process and in Redis (shared by every process)."""

from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.shared_store import redis_key
from clickme.players.ratelimit import (
    IDLE_KEY_SLACK_S,
    Limit,
    RateLimiter,
    RedisRateLimiter,
    SlidingWindowLimiter,
)
from clickme.scoring.scorer import Scorer
from tests.players.painting import act_as, new_player, start

PER_SECOND = Limit("test", count=3, window_s=1.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


NewLimiter = Callable[[Clock], RateLimiter]


@pytest.fixture(params=["in-process", "redis"])
def new_limiter(request: pytest.FixtureRequest) -> NewLimiter:
    """Makes limiters on a clock of the test's, of each kind."""
    if request.param == "in-process":
        return lambda clock: SlidingWindowLimiter(clock=clock)
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    return lambda clock: RedisRateLimiter(client, prefix, clock=clock)


def test_a_window_allows_count_hits_then_says_how_long_to_wait(new_limiter: NewLimiter) -> None:
    clock = Clock()
    limiter = new_limiter(clock)
    assert [limiter.hit(PER_SECOND, "a") for _ in range(3)] == [0, 0, 0]
    clock.now += 0.25
    assert limiter.hit(PER_SECOND, "a") == pytest.approx(0.75)
    assert limiter.hit(PER_SECOND, "b") == 0  # keys are independent
    clock.now += 0.75  # the three hits left the window; the refused one never counted
    assert [limiter.hit(PER_SECOND, "a") for _ in range(3)] == [0, 0, 0]
    assert limiter.hit(PER_SECOND, "a") == pytest.approx(1.0)


def test_idle_keys_drop_out_past_the_key_budget() -> None:
    limiter = SlidingWindowLimiter(max_keys=2, clock=Clock())
    for _ in range(3):
        limiter.hit(PER_SECOND, "old")
    limiter.hit(PER_SECOND, "b")
    limiter.hit(PER_SECOND, "c")  # "old" was least recently hit: forgotten
    assert limiter.hit(PER_SECOND, "old") == 0


def test_processes_share_one_window_in_redis(redis_client: redis.Redis, redis_prefix: str) -> None:
    """Two API processes (two limiters) on Redis's own clock count against one window."""
    first, second = (RedisRateLimiter(redis_client, redis_prefix) for _ in range(2))
    assert [limiter.hit(PER_SECOND, "a") for limiter in (first, second, first)] == [0, 0, 0]
    assert 0 < second.hit(PER_SECOND, "a") <= 1.0
    assert second.hit(PER_SECOND, "b") == 0


def test_a_script_redis_lost_is_loaded_again(redis_client: redis.Redis, redis_prefix: str) -> None:
    """The window's script is run by its hash; a Redis that no longer has it (restarted,
    flushed) is given it again, and the hit still counts."""
    limiter = RedisRateLimiter(redis_client, redis_prefix)
    assert limiter.hit(PER_SECOND, "a") == 0
    redis_client.script_flush()
    assert [limiter.hit(PER_SECOND, "a") for _ in range(2)] == [0, 0]
    assert 0 < limiter.hit(PER_SECOND, "a") <= 1.0  # three hits counted in the window


def test_idle_keys_expire_in_redis(redis_client: redis.Redis, redis_prefix: str) -> None:
    RedisRateLimiter(redis_client, redis_prefix).hit(PER_SECOND, "a")
    ttl_ms = redis_client.pttl(redis_key(redis_prefix, "rate", PER_SECOND.name, "a"))
    assert 0 < ttl_ms <= (PER_SECOND.window_s + IDLE_KEY_SLACK_S) * 1000


def test_limits_must_allow_something() -> None:
    with pytest.raises(ValueError):
        Limit("none", count=0, window_s=1)


@pytest.fixture
def limited(
    game_settings: Settings, shared_scorer: Scorer, new_limiter: NewLimiter
) -> Iterator[tuple[TestClient, Clock]]:
    """The game with small limits and a clock that only moves when the test says."""
    settings = game_settings.model_copy(
        update={"rate_reveals_per_s": 3, "rate_rounds_per_min": 2, "rate_players_per_min": 3}
    )
    clock = Clock()
    with TestClient(create_app(settings, scorer=shared_scorer)) as client:
        client.app.state.runtime.limiter = new_limiter(clock)
        yield client, clock


def assert_limited(response, seconds: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == seconds


def test_point_batches_are_limited_per_player_before_any_work(
    limited: tuple[TestClient, Clock], game_settings: Settings
) -> None:
    client, clock = limited
    player_id = new_player(client)
    round_id = start(client)["round_id"]
    first = {"seq": 1, "points": [[10, 10, 5]]}
    assert client.post(f"/api/rounds/{round_id}/points", json=first).status_code == 200
    for _ in range(2):  # refused batches count too: each one cost the server a request
        assert client.post("/api/rounds/999999/points", json=first).status_code == 404
    second = {"seq": 2, "points": [[20, 20, 50]]}
    assert_limited(client.post(f"/api/rounds/{round_id}/points", json=second), "1")

    new_player(client)  # another player on the same address is not held back
    assert client.post("/api/rounds/999999/points", json=first).status_code == 404
    act_as(client, game_settings, player_id)
    clock.now += 1.0
    assert client.post(f"/api/rounds/{round_id}/points", json=second).status_code == 200


def test_rounds_and_new_players_are_limited_per_address(
    limited: tuple[TestClient, Clock],
) -> None:
    client, clock = limited
    new_player(client)
    start(client)
    new_player(client)  # a new cookie does not escape the address's limit
    start(client)
    assert_limited(client.post("/api/rounds", json={}), "60")
    new_player(client)
    assert_limited(client.post("/api/players", json={"consent": True}), "60")
    clock.now += 60
    start(client)
