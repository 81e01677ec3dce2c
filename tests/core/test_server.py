"""`clickme serve` against slow clients: unfinished headers are cut off, idle kept-alive
connections closed, and connections beyond the per-process limit refused; its quiet tick, the
requests' Date header, and what is frozen for the garbage collector."""

import asyncio
import gc
import signal
import socket
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from clickme.core.server import QuietServer
from tests.live_server import prepared_env, serving

HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 4


@pytest.fixture(scope="module")
def server_address(
    models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    root = tmp_path_factory.mktemp("slow-clients")
    env = prepared_env(
        root,
        models_cache_dir,
        ["import-demo"],
        CLICKME_HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        CLICKME_HTTP_KEEPALIVE_TIMEOUT_S="1",
        CLICKME_HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    with serving(env, root / "server.log", "demo") as base_url:
        url = urlsplit(base_url)
        yield url.hostname, url.port


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection (reading gives nothing) within `seconds`."""
    connection.settimeout(seconds)
    try:
        while connection.recv(4096):
            pass
    except TimeoutError:
        return False
    return True


def test_unfinished_headers_are_cut_off(server_address: tuple[str, int]) -> None:
    with socket.create_connection(server_address) as silent:
        started = time.monotonic()
        assert closed_within(silent, HEADER_TIMEOUT_S + 3)
        assert time.monotonic() - started >= HEADER_TIMEOUT_S * 0.9
    with socket.create_connection(server_address) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        assert closed_within(slow, HEADER_TIMEOUT_S + 3)


def test_a_prompt_client_is_served_and_an_idle_one_let_go(server_address: tuple[str, int]) -> None:
    with socket.create_connection(server_address) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        client.settimeout(5)
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        assert closed_within(client, 4)  # the keep-alive timeout (1 s)


def test_connections_beyond_the_limit_are_refused(server_address: tuple[str, int]) -> None:
    idle = [socket.create_connection(server_address) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        with socket.create_connection(server_address) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            extra.settimeout(5)
            assert extra.recv(4096).startswith(b"HTTP/1.1 503")
    finally:
        for connection in idle:
            connection.close()


async def test_the_server_does_not_tick_while_idle_and_stops_at_once() -> None:
    server = QuietServer(uvicorn.Config(app=lambda scope, receive, send: None))
    ticks: list[int] = []
    on_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(counter)
        return await on_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    loop = asyncio.create_task(server.main_loop())
    await asyncio.sleep(2.5)
    assert ticks == [0]  # the first, which dates the headers (uvicorn's own loop: 25 ticks)
    assert server.server_state.default_headers[0][0] == b"date"
    stopped_at = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    await asyncio.wait_for(loop, timeout=0.5)
    assert time.monotonic() - stopped_at < 0.25


def test_each_request_is_dated_in_its_own_second(server_address: tuple[str, int]) -> None:
    """Without the tick each second, the requests date the headers themselves."""
    for _ in range(3):
        with socket.create_connection(server_address) as client:
            client.settimeout(5)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = client.recv(4096).decode()
        date = next(line for line in answer.split("\r\n") if line.startswith("date: "))
        sent = parsedate_to_datetime(date.removeprefix("date: ")).timestamp()
        assert abs(sent - time.time()) <= 1.5
        time.sleep(1.1)


async def test_what_the_app_loaded_at_start_is_frozen_for_the_garbage_collector() -> None:
    async def app(scope: dict, receive: object, send: object) -> None:
        raise AssertionError("no request comes")

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = QuietServer(config)
    gc.unfreeze()
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
    finally:
        server.should_exit = True  # handle_exit would raise the signal again on the way out
        server.wake()
        await asyncio.wait_for(serving, timeout=5)
        gc.unfreeze()
