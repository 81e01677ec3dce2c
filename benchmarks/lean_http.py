"""A lean HTTP/1.1 client for the load generator: one keep-alive connection per player.

httpx cost the load benchmark's generator about 1.3 CPU ms per request (this client: about 0.3):
on the 2-core machine, beside the API and the worker, over a quarter of a core at saturation
taken from the system being measured (players' browsers do not run on the server). This client
does what the simulated players need and no more: POST with a JSON body (or none) over plain
HTTP, the cookies the server sets sent back, a reply framed by its Content-Length, chunked or by
the connection's end, a deadline per request. Beside it, a player's strokes' WebSocket as lean:
its handshake, masked text frames out, the answers in (the server's pings answered).
"""

import asyncio
import base64
import os
import struct
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.frames import apply_mask

MAX_HEADER_BYTES = 64 * 1024


class TransportError(Exception):
    """The request got no complete reply: the connection failed, closed or timed out."""


@dataclass(frozen=True)
class Reply:
    status_code: int
    headers: dict[str, str]  # lower-cased names (a repeated header: its last value)
    content: bytes
    set_cookies: tuple[str, ...] = ()  # every Set-Cookie header's value

    def json(self) -> Any:
        return orjson.loads(self.content)


@dataclass
class LeanClient:
    """One player's connection to ``base_url`` (``http://host:port``), opened on first use and
    again after a failure; its cookie jar."""

    base_url: str
    timeout_s: float
    cookies: dict[str, str] = field(default_factory=dict)
    _streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, json: object = None) -> Reply:
        """POST ``path`` (with ``json`` as its body unless None); TransportError on failure.
        A kept-alive connection the server closed while it idled (no byte of a reply came) is
        opened again and the request sent once more, as browsers do."""
        request = self._request(path, json)
        try:
            async with asyncio.timeout(self.timeout_s):
                reused = self._streams is not None
                try:
                    return await self._exchange(request)
                except (ConnectionResetError, asyncio.IncompleteReadError) as closed:
                    if not reused or getattr(closed, "partial", b""):
                        raise
                    await self.aclose()
                    return await self._exchange(request)
        except (OSError, EOFError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
            await self.aclose()
            raise TransportError(f"{type(error).__name__}: {error}") from error

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()

    def _request(self, path: str, json: object) -> bytes:
        body = b"" if json is None else orjson.dumps(json)
        host = urlsplit(self.base_url).netloc
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        if json is not None:
            lines.append("Content-Type: application/json")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _exchange(self, request: bytes) -> Reply:
        if self._streams is None:
            parts = urlsplit(self.base_url)
            if parts.scheme != "http" or parts.hostname is None or parts.port is None:
                raise ValueError(f"plain http://host:port only, not {self.base_url!r}")
            self._streams = await asyncio.open_connection(parts.hostname, parts.port)
        reader, writer = self._streams
        writer.write(request)
        reply = await _read_reply(reader)
        if reply.headers.get("connection", "").lower() == "close":
            await self.aclose()
        self._keep_cookies(reply)
        return reply

    def _keep_cookies(self, reply: Reply) -> None:
        for line in reply.set_cookies:
            jar: SimpleCookie = SimpleCookie(line)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})


# WebSocket opcodes (RFC 6455) the strokes' socket uses.
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA
_FIN = 0x80
_MASKED = 0x80


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final frame from a client: masked, as RFC 6455 requires of clients."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", _FIN | opcode, _MASKED | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", _FIN | opcode, _MASKED | 126, length)
    else:
        head = struct.pack("!BBQ", _FIN | opcode, _MASKED | 127, length)
    mask = os.urandom(4)
    return head + mask + apply_mask(payload, mask)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame from the server (unmasked, final: the server sends no fragments)."""
    first, second = await reader.readexactly(2)
    if not first & _FIN or second & _MASKED:
        raise ValueError("a fragmented or masked frame from the server")
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


@dataclass
class StrokesSocket:
    """One player's strokes' WebSocket (``/api/strokes``) beside its HTTP connection, with the
    cookies that one holds; opened on first use and again after a failure. As lean as
    ``LeanClient``: the websockets library's client cost the generator about 0.15 CPU ms more
    per batch (its reading task and its queue)."""

    http: LeanClient
    _streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def reveal(self, round_id: int, batch: dict) -> Reply:
        """The batch's answer, read as its POST's reply (its status, Retry-After and body);
        TransportError on failure."""
        message = orjson.dumps({"round_id": round_id, **batch})
        try:
            async with asyncio.timeout(self.http.timeout_s):
                if self._streams is None:
                    self._streams = await self._open()
                reader, writer = self._streams
                writer.write(client_frame(_TEXT, message))
                answer = orjson.loads(await self._next_message(reader, writer))
        except (OSError, EOFError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
            await self.aclose()
            raise TransportError(f"{type(error).__name__}: {error}") from error
        retry = answer["retry_after"]
        headers = {} if retry is None else {"retry-after": str(retry)}
        return Reply(answer["status"], headers, orjson.dumps(answer["body"]))

    async def _next_message(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        """The next text message; the server's pings answered on the way."""
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == _TEXT:
                return payload
            if opcode == _PING:
                writer.write(client_frame(_PONG, payload))
            elif opcode == _CLOSE:
                raise EOFError(f"the server closed the socket: {payload[:2].hex()}")

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The connection, its handshake answered 101 (else a ValueError with the status)."""
        parts = urlsplit(self.http.base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"plain http://host:port only, not {self.http.base_url!r}")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /api/strokes HTTP/1.1",
            f"Host: {parts.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.http.cookies.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"101":
            writer.close()
            raise ValueError(f"the socket's handshake was answered {status.decode()}")
        return reader, writer

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("reply headers too long")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    cookies = []
    for line in header_lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = value
        if name == "set-cookie":
            cookies.append(value)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        content = await _read_chunked(reader)
    elif "content-length" in headers:
        content = await reader.readexactly(int(headers["content-length"]))
    else:  # delimited by the connection's end
        headers["connection"] = "close"
        content = await reader.read()
    return Reply(status, headers, content, tuple(cookies))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
