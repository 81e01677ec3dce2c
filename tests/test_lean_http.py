"""The load generator's HTTP client against a small server of this test's own: cookies kept and
sent back, replies framed by Content-Length, chunked or the connection's end, one connection
kept alive across requests and opened again after the server closes it."""

import asyncio

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from benchmarks.lean_http import LeanClient, TransportError, client_frame, read_frame

REPLIES = [
    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nSet-Cookie: player=abc; HttpOnly; Path=/\r\n"
    b"Set-Cookie: other=1\r\n\r\n{}",
    b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n'
    b"0\r\n\r\n",
    b'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n{"closed": true}',
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull",
]
CLOSE_DELIMITED = 2  # the reply the server ends by closing the connection


async def test_cookies_framing_and_keep_alive() -> None:
    seen: list[tuple[int, bytes]] = []
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while len(seen) < len(REPLIES):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            seen.append((connections, head + body))
            writer.write(REPLIES[len(seen) - 1])
            await writer.drain()
            if len(seen) - 1 == CLOSE_DELIMITED:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = LeanClient(f"http://127.0.0.1:{port}", timeout_s=5)
    async with server:
        joined = await client.post("/api/players", {"consent": True})
        assert joined.status_code == 201 and joined.json() == {}
        assert client.cookies == {"player": "abc", "other": "1"}
        chunked = await client.post("/api/rounds/1/start")
        assert chunked.status_code == 200 and chunked.json() == {"a": 1}
        closing = await client.post("/api/rounds/1/skip")
        assert closing.status_code == 503 and closing.headers["retry-after"] == "1"
        assert closing.json() == {"closed": True}
        again = await client.post("/api/rounds/2/start")
        assert again.status_code == 200 and again.json() is None
    assert [connection for connection, _ in seen] == [1, 1, 1, 2]  # kept alive, then reopened
    assert b'{"consent":true}' in seen[0][1] and b"Cookie" not in seen[0][1]
    assert b"Cookie: player=abc; other=1\r\n" in seen[1][1]
    await client.aclose()


async def test_no_server_is_a_transport_error() -> None:
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(TransportError, match="ConnectionRefusedError"):
        await LeanClient(f"http://127.0.0.1:{port}", timeout_s=5).post("/")


async def test_a_kept_alive_connection_the_server_closed_is_opened_again_once() -> None:
    """The server closes an idle kept-alive connection (its keep-alive timeout, while a round's
    batches go over the strokes' socket): the next request goes on a new one, as a browser's
    does; a connection that fails again is the transport error."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections <= 2:  # answer one request, then close without saying so
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
            writer.write(REPLIES[3])
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = LeanClient(f"http://127.0.0.1:{port}", timeout_s=5)
    async with server:
        assert (await client.post("/a")).status_code == 200
        await asyncio.sleep(0.05)  # the server has closed it
        assert (await client.post("/b")).status_code == 200
        await asyncio.sleep(0.05)
        with pytest.raises(TransportError):  # reopened once: that one closes at once too
            await client.post("/c")
    assert connections == 3  # /a, /b after one reopening, /c once more
    await client.aclose()


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_a_client_frame_reads_as_websockets_reads_it(size: int) -> None:
    """The generator's frames, parsed by the websockets library's server: one text message each
    (the lengths where the frame's length field changes size)."""
    server = ServerProtocol(max_size=None)
    client = ClientProtocol(parse_uri("ws://127.0.0.1/api/strokes"))
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    server.send_response(server.accept(server.events_received()[0]))
    text = bytes(range(48, 58)) * (size // 10) + b"x" * (size % 10)
    server.receive_data(client_frame(0x1, text))
    [frame] = server.events_received()
    assert (frame.opcode, frame.data) == (Opcode.TEXT, text)


async def test_a_server_frame_is_read_with_its_length_and_opcode() -> None:
    server = ServerProtocol(max_size=None)
    client = ClientProtocol(parse_uri("ws://127.0.0.1/api/strokes"))
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    server.send_response(server.accept(server.events_received()[0]))
    server.data_to_send()  # the handshake's answer
    reader = asyncio.StreamReader()
    server.send_ping(b"ping")
    server.send_text(b"a" * 70_000)
    server.send_text(b'{"status":200}')
    reader.feed_data(b"".join(server.data_to_send()))
    assert await read_frame(reader) == (0x9, b"ping")
    assert await read_frame(reader) == (0x1, b"a" * 70_000)
    assert await read_frame(reader) == (0x1, b'{"status":200}')
