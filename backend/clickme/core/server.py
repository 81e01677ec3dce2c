"""How `clickme serve` holds connections: a deadline for a request's headers, the keep-alive
timeout and a per-process connection limit (uvicorn has the last two, not the first)."""

from asyncio import BaseTransport, TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
    }
