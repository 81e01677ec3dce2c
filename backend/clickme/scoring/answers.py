"""The scoring answers' channel of an API process, read on an event loop.

A ``RedisScorer`` subscribes to one pub/sub channel and every answer a worker publishes comes
back on it. The subscription is made with redis-py, blocking (so every URL redis-py takes works:
TCP, TLS, a Unix socket, a password), then its socket is handed to an event loop, which reads it
when it is readable and parses the messages here (RESP2): the API's own loop, so that an answer
wakes only the loop that waits for it, where a reader thread woke itself and then the loop (the
thread's 0.15 to 0.27 CPU ms a reveal gone, the loop's 0.08 to 0.18 more: a reveal 3 to 4%
cheaper, ``benchmarks/bench_requests.py``). Without a
running loop (the command line, a thread of its own) the channel runs a loop of its own in a
thread. A lost connection is subscribed again from a short-lived thread (never on the loop:
connecting may block for ``CONNECT_TIMEOUT_S``); whatever is published meanwhile is lost.
"""

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import redis
from redis.connection import Connection
from redis.exceptions import InvalidResponse, RedisError, ResponseError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 1.0
RECONNECT_DELAY_S = 0.5
CLOSE_WAIT_S = 2.0  # for the loop to stop reading, when closed from another thread
READ_SIZE = 1 << 16  # more than a TLS record
Reply = bytes | int | list | ResponseError | None


class Replies:
    """RESP2 replies parsed from a connection's bytes as they arrive (``feed``, then iterate):
    bulk and simple strings as bytes, integers, arrays as lists, errors as ``ResponseError``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def __iter__(self) -> Iterator[Reply]:
        """The complete replies fed so far (those incomplete wait for more bytes)."""
        while True:
            parsed = self._parse(self._start)
            if parsed is None:
                del self._buffer[: self._start]
                self._start = 0
                return
            reply, self._start = parsed
            yield reply

    def _parse(self, at: int) -> tuple[Reply, int] | None:
        """The reply that starts at ``at`` and where the next one starts; None while it is
        incomplete."""
        end = self._buffer.find(b"\r\n", at)
        if end < 0:
            return None
        kind, line, after = self._buffer[at], bytes(self._buffer[at + 1 : end]), end + 2
        if kind == ord("$"):
            return self._bulk(int(line), after)
        if kind == ord("*"):
            return self._array(int(line), after)
        if kind == ord(":"):
            return int(line), after
        if kind == ord("+"):
            return line, after
        if kind == ord("-"):
            return ResponseError(line.decode(errors="replace")), after
        raise InvalidResponse(f"not a RESP2 reply: {bytes(self._buffer[at:end])[:40]!r}")

    def _bulk(self, length: int, at: int) -> tuple[Reply, int] | None:
        if length < 0:
            return None, at
        if len(self._buffer) < at + length + 2:
            return None
        return bytes(self._buffer[at : at + length]), at + length + 2

    def _array(self, length: int, at: int) -> tuple[Reply, int] | None:
        if length < 0:
            return None, at
        items: list[Reply] = []
        for _ in range(length):
            parsed = self._parse(at)
            if parsed is None:
                return None
            item, at = parsed
            items.append(item)
        return items, at


def _subscribed(pool: redis.ConnectionPool, channel: bytes) -> tuple[Connection, Replies]:
    """A connection of the pool subscribed to the channel (its confirmation read, blocking, at
    most ``CONNECT_TIMEOUT_S``) and the replies already read past it, its socket non-blocking."""
    connection = pool.get_connection()
    try:
        connection.send_command("SUBSCRIBE", channel)
        sock = socket_of(connection)
        sock.settimeout(CONNECT_TIMEOUT_S)
        replies = Replies()
        while True:
            data = sock.recv(READ_SIZE)
            if not data:
                raise redis.ConnectionError("Redis closed the connection while subscribing")
            replies.feed(data)
            first = next(iter(replies), None)
            if first is not None:
                break
        if not (isinstance(first, list) and first[:1] == [b"subscribe"]):
            raise redis.ConnectionError(f"could not subscribe to the answers: {first!r}")
        sock.setblocking(False)
        return connection, replies
    except (OSError, RedisError):
        connection.disconnect()
        pool.release(connection)
        raise


class AnswersChannel:
    """The data of each message published on ``channel``, given to ``on_message`` on the event
    loop; ``on_lost`` is called (on the loop, or on the thread that found Redis out of reach)
    when messages may have been lost: the connection dropped, or could not be made."""

    def __init__(
        self,
        url: str,
        channel: bytes,
        on_message: Callable[[bytes], None],
        on_lost: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.channel = channel
        self._on_message = on_message
        self._on_lost = on_lost
        tcp = {} if url.startswith("unix:") else {"socket_keepalive": True}  # not on a Unix socket
        self._pool = redis.ConnectionPool.from_url(
            url,
            client_name="clickme-api-answers",
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=None,
            protocol=2,  # a message is then a plain reply: [b"message", channel, data]
            **tcp,
        )
        self._loop = loop
        self._own_loop: threading.Thread | None = None
        self._connection: Connection | None = None
        self._replies = Replies()
        self.listening = threading.Event()
        self._closed = threading.Event()
        self._reconnecting: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "open() first"
        return self._loop

    def on_its_loop(self) -> bool:
        """Whether this thread runs the loop the messages are read on."""
        return self._loop is not None and running_loop() is self._loop

    def open(self) -> bool:
        """Subscribes (blocking: at most about ``CONNECT_TIMEOUT_S``) and reads on the given
        loop, else on the running loop of this thread, else on a loop of its own. Whether it
        is listening; if not (Redis out of reach) it keeps trying in the background."""
        if self._loop is None:
            self._loop = running_loop() or self._start_own_loop()
        try:
            self._listen(*_subscribed(self._pool, self.channel))
        except (OSError, RedisError):
            self._reconnect_later()
            return False
        return True

    def close(self) -> None:
        """Stops reading and closes the connection at once (also when Redis went silent);
        again, nothing."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.listening.clear()
        self._stop_reading_now()
        if self._own_loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._own_loop.join()
            self.loop.close()
        if self._reconnecting is not None:
            self._reconnecting.join()
        self._pool.disconnect()

    def _start_own_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        self._own_loop = threading.Thread(
            target=loop.run_forever, name="score-answers", daemon=True
        )
        self._own_loop.start()
        return loop

    def _stop_reading_now(self) -> None:
        """``_stop_reading`` on the loop, waited for (at most ``CLOSE_WAIT_S``); here when this
        is the loop's thread or the loop is not running."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self.on_its_loop() or not loop.is_running():
            self._stop_reading()
            return
        stopped = threading.Event()

        def stop() -> None:
            self._stop_reading()
            stopped.set()

        loop.call_soon_threadsafe(stop)
        stopped.wait(CLOSE_WAIT_S)

    def _on_loop(self, callback: Callable[[], None]) -> None:
        """``callback()`` on the loop: now when this is its thread, else soon."""
        if self.on_its_loop():
            callback()
        else:
            self.loop.call_soon_threadsafe(callback)

    def _listen(self, connection: Connection, replies: Replies) -> None:
        """Reads the subscribed connection on the loop from now on (replies read already
        first); listening at once: what arrives until the loop's first read waits in its
        socket."""
        if self._closed.is_set():
            connection.disconnect()
            return
        self._connection, self._replies = connection, replies
        self.listening.set()
        self._on_loop(self._start_reading)

    def _start_reading(self) -> None:
        connection = self._connection
        if connection is None or self._closed.is_set():
            return
        self.loop.add_reader(socket_of(connection), self._read)
        self._deliver()

    def _stop_reading(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            if connection._sock is not None:
                self.loop.remove_reader(connection._sock)
            connection.disconnect()
            self._pool.release(connection)

    def _read(self) -> None:
        """On the loop, when the connection is readable: one read (what is left makes it
        readable again; over TLS a read takes at most one record, 16 KiB, whole, so nothing is
        left decrypted unseen), then each whole message's data to ``on_message``."""
        connection = self._connection
        if connection is None:
            return
        try:
            data = socket_of(connection).recv(READ_SIZE)
            if not data:
                raise redis.ConnectionError("Redis closed the connection")
            self._replies.feed(data)
            self._deliver()
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        except (OSError, RedisError) as error:
            self._lost(error)

    def _deliver(self) -> None:
        for reply in self._replies:
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                self._on_message(reply[2])

    def _lost(self, error: Exception) -> None:
        """On the loop: the connection failed; the waiting requests are told, a thread
        subscribes again."""
        self._stop_reading()
        if self._closed.is_set():
            return
        log.warning("lost the scoring answers channel: %s", error)
        self._reconnect_later()

    def _reconnect_later(self) -> None:
        self.listening.clear()
        self._on_lost()
        thread = threading.Thread(target=self._reconnect, name="score-answers-reconnect")
        thread.daemon = True
        self._reconnecting = thread
        thread.start()

    def _reconnect(self) -> None:
        """Subscribes again every ``RECONNECT_DELAY_S`` until it can (or the channel closes)."""
        while not self._closed.wait(RECONNECT_DELAY_S):
            try:
                self._listen(*_subscribed(self._pool, self.channel))
                return
            except (OSError, RedisError):
                continue


def socket_of(connection: Connection) -> socket.socket:
    """The socket of a connected redis-py connection (redis-py has no public name for it)."""
    sock = connection._sock
    assert sock is not None, "not connected"
    return sock


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
