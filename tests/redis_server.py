"""Redis for the tests: the running one (a key prefix per test, its keys deleted afterwards), and
private redis-server processes that a test stops and starts again (a Redis restart)."""

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_TEST_URL

START_TIMEOUT_S = 20.0


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of the test's own on the test Redis; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    with redis.Redis.from_url(REDIS_TEST_URL) as client:
        try:
            client.ping()
        except redis.ConnectionError:
            if os.environ.get("CI"):
                pytest.fail(f"no Redis at {REDIS_TEST_URL} in CI")
            pytest.skip(f"no Redis at {REDIS_TEST_URL}")
        yield prefix
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@pytest.fixture
def redis_client(redis_prefix: str) -> Iterator[redis.Redis]:
    """A client of the test Redis, as the app makes it (strings in and out)."""
    with redis.Redis.from_url(REDIS_TEST_URL, decode_responses=True) as client:
        yield client


def pool_checkouts(monkeypatch: pytest.MonkeyPatch, pool: redis.ConnectionPool) -> list[tuple]:
    """Each connection the pool hands out from now on (its checkout's arguments), counted."""
    checkouts: list[tuple] = []
    real_checkout = pool.get_connection

    def checkout(*args: object, **options: object) -> object:
        checkouts.append(args)
        return real_checkout(*args, **options)

    monkeypatch.setattr(pool, "get_connection", checkout)
    return checkouts


def _answers(port: int) -> bool:
    with redis.Redis(port=port, socket_connect_timeout=1) as client:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


@contextmanager
def private_redis(port: int, log_path: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """A throwaway redis-server (nothing saved) on the port, answering PING; killed at the end.
    ``options``: more of redis-server's command line (a TLS port, say)."""
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", *options]
    with log_path.open("ab") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            assert server.poll() is None, f"redis-server exited: see {log_path}"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield server
    finally:
        server.kill()
        server.wait(timeout=20)
