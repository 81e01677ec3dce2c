"""How `clickme serve` holds connections: a deadline for a request's headers, the keep-alive
timeout and a per-process connection limit (uvicorn has the last two, not the first);
uvicorn's housekeeping tick every 30 seconds instead of ten times a second (the Date header
brought up to date by the requests themselves), and the objects loaded at start frozen for the
garbage collector."""

import asyncio
import contextlib
import gc
import socket
import time
from asyncio import BaseTransport, TimerHandle
from email.utils import formatdate
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from clickme.core.config import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol that closes a connection whose request headers are not complete
    within `header_timeout_s` of its opening or of the request's first byte (slow clients)."""

    header_timeout_s = 10.0
    _header_timer: TimerHandle | None = None

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]  # uvicorn narrows it to Transport
        self._start_header_clock()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._start_header_clock()

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        if isinstance(self.server_state, DatedServerState):
            self.server_state.date_now(self.config)
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def _start_header_clock(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_clock(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the connection settings."""
    protocol = type(
        "ClickmeHttpProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_s": settings.http_header_timeout_s},
    )
    return {
        "http": protocol,
        "timeout_keep_alive": settings.http_keepalive_timeout_s,
        "limit_concurrency": settings.http_max_connections,
        # the strokes' socket: a message no larger than a request's body, and not compressed
        # (deflate would cost each batch more CPU than its bytes on the wire save)
        "ws_max_size": settings.max_body_bytes,
        "ws_per_message_deflate": False,
    }


class DatedServerState(ServerState):
    """uvicorn's state shared by a server's connections, whose default headers (the Date and
    the Server) a request brings to the current second when they are older (``date_now``), as
    uvicorn's tick did every second."""

    dated_second = -1

    def date_now(self, config: uvicorn.Config) -> None:
        second = int(time.time())
        if second != self.dated_second:
            self.dated_second = second
            date = [(b"date", formatdate(second, usegmt=True).encode())]
            self.default_headers = (date if config.date_header else []) + config.encoded_headers


TICK_S = 30.0


class QuietServer(uvicorn.Server):
    """uvicorn's server ticking every ``TICK_S``, not every 100 ms: the tick dated the headers
    and looks for a stop, and each wake-up of an idle process costs CPU (about 2 ms a second at
    10 Hz, 0.35 at 1 Hz, on the 2-core machine). Each request dates the headers instead
    (``DatedServerState``); a stop signal ends the loop at once (``wake``)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _woken: asyncio.Event | None = None

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.server_state = DatedServerState()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """After the app started (its runtime, model and caches loaded): those objects are
        moved out of the cyclic garbage collector's reach (``gc.freeze``), so that its full
        collections stop scanning them again and again while requests are served."""
        await super().startup(sockets)
        gc.collect()
        gc.freeze()

    async def main_loop(self) -> None:
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        counter = 0  # uvicorn's on_tick refreshes the headers on multiples of 10
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._woken.wait()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.wake()

    def wake(self) -> None:
        """Ticks now, from any thread (after a stop was asked)."""
        if self._loop is not None and self._woken is not None:
            self._loop.call_soon_threadsafe(self._woken.set)
