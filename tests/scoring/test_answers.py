"""The answers' channel: RESP2 replies parsed as they arrive, messages read on an event loop
(the running one, else one of its own), a lost connection told and subscribed again."""

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import InvalidResponse, ResponseError

from clickme.scoring.answers import AnswersChannel, Replies
from tests.certificates import make_certificate
from tests.conftest import REDIS_TEST_URL
from tests.live_server import free_port
from tests.redis_server import private_redis

# Answers are binary: CRLF and the RESP type bytes may appear inside a message's data.
DATA = b"\x00id\r\n$3\r\n*1\r\n" + bytes(range(256))
MESSAGE = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n" % (len(DATA), DATA)


def replies_of(*chunks: bytes) -> list:
    replies = Replies()
    parsed = []
    for chunk in chunks:
        replies.feed(chunk)
        parsed += list(replies)
    return parsed


def test_a_message_split_anywhere_is_parsed_once_whole() -> None:
    for cut in range(len(MESSAGE) + 1):
        assert replies_of(MESSAGE[:cut], MESSAGE[cut:]) == [[b"message", b"ch", DATA]], cut
    assert replies_of(*(MESSAGE[i : i + 1] for i in range(len(MESSAGE)))) == [
        [b"message", b"ch", DATA]
    ]


def test_each_kind_of_reply_is_parsed_as_resp2_says() -> None:
    stream = (
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"  # the subscription's confirmation
        b"+OK\r\n"
        b":-42\r\n"
        b"$0\r\n\r\n"  # an empty bulk string
        b"$-1\r\n"  # a null bulk string
        b"*-1\r\n"  # a null array
        b"*2\r\n*1\r\n:7\r\n$1\r\nx\r\n"  # nested
        b"-ERR unknown command\r\n"
    )
    *replies, error = replies_of(stream)
    assert replies == [[b"subscribe", b"ch", 1], b"OK", -42, b"", None, None, [[7], b"x"]]
    assert isinstance(error, ResponseError) and str(error) == "ERR unknown command"


def test_two_messages_in_one_read_and_a_third_begun_give_two() -> None:
    replies = Replies()
    replies.feed(MESSAGE + MESSAGE + MESSAGE[:20])
    assert len(list(replies)) == 2
    replies.feed(MESSAGE[20:])
    assert list(replies) == [[b"message", b"ch", DATA]]


def test_bytes_that_are_not_resp2_are_refused() -> None:
    replies = Replies()
    replies.feed(b"HTTP/1.1 400 Bad Request\r\n")
    with pytest.raises(InvalidResponse, match="not a RESP2 reply"):
        list(replies)


class Received:
    """What a channel gave: each message's data and the thread it came on, and its losses."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, int]] = []
        self.lost = 0

    def message(self, data: bytes) -> None:
        self.messages.append((data, threading.get_ident()))

    def lost_one(self) -> None:
        self.lost += 1


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


async def wait_until_async(
    condition: Callable[[], object], what: str, timeout_s: float = 5
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def channel_name() -> bytes:
    return f"test-answers:{uuid.uuid4().hex}".encode()


@pytest.fixture
def publisher() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    yield client
    client.close()


async def test_on_a_running_loop_messages_come_on_that_loop_in_order(
    publisher: redis.Redis,
) -> None:
    received = Received()
    channel = AnswersChannel(REDIS_TEST_URL, channel_name(), received.message, received.lost_one)
    assert channel.open()
    try:
        assert channel.loop is asyncio.get_running_loop() and channel._own_loop is None
        big = bytes(range(256)) * 4096  # 1 MiB: many reads on the loop
        sent = [b"first", big, b"", DATA]
        await asyncio.to_thread(lambda: [publisher.publish(channel.channel, m) for m in sent])
        await wait_until_async(lambda: len(received.messages) == len(sent), "the messages")
        assert [data for data, _ in received.messages] == sent
        assert {thread for _, thread in received.messages} == {threading.get_ident()}
    finally:
        channel.close()
    assert received.lost == 0 and not channel.listening.is_set()
    await wait_until_async(lambda: publisher.pubsub_numsub(channel.channel)[0][1] == 0, "unsub")


def test_without_a_running_loop_it_reads_on_a_loop_of_its_own(publisher: redis.Redis) -> None:
    received = Received()
    channel = AnswersChannel(REDIS_TEST_URL, channel_name(), received.message, received.lost_one)
    assert channel.open()
    own_loop = channel._own_loop
    try:
        assert own_loop is not None and own_loop.name == "score-answers"
        publisher.publish(channel.channel, b"answer")
        wait_until(lambda: received.messages, "the message")
        assert received.messages == [(b"answer", own_loop.ident)]
    finally:
        channel.close()
    assert not own_loop.is_alive()


def test_a_lost_connection_is_told_and_subscribed_again(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    received = Received()
    with private_redis(port, tmp_path / "redis.log"), redis.Redis.from_url(url) as client:
        channel = AnswersChannel(url, channel_name(), received.message, received.lost_one)
        assert channel.open()
        try:
            assert client.client_kill_filter(_type="pubsub") == 1
            wait_until(lambda: received.lost == 1, "the loss to be told")
            wait_until(channel.listening.is_set, "the channel again")
            assert client.pubsub_numsub(channel.channel) == [(channel.channel, 1)]
            client.publish(channel.channel, b"after")
            wait_until(lambda: received.messages, "the message after")
            assert [data for data, _ in received.messages] == [b"after"]
        finally:
            channel.close()


def test_redis_out_of_reach_is_told_at_once_and_subscribed_once_back(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    received = Received()
    channel = AnswersChannel(url, channel_name(), received.message, received.lost_one)
    try:
        started = time.monotonic()
        assert not channel.open()
        assert time.monotonic() - started < 1.5 and received.lost == 1
        with private_redis(port, tmp_path / "redis.log"), redis.Redis.from_url(url) as client:
            wait_until(channel.listening.is_set, "the channel once Redis is up", 10)
            client.publish(channel.channel, b"back")
            wait_until(lambda: received.messages, "the message")
    finally:
        channel.close()


def test_over_tls_messages_larger_than_a_record_come_whole(tmp_path: Path) -> None:
    """A ``rediss://`` URL: redis-py makes the TLS connection, the loop reads it (the bytes
    a read leaves decrypted in the TLS layer are read too)."""
    certificate = make_certificate(tmp_path, "localhost")
    port, tls_port = free_port(), free_port()
    tls = ["--tls-port", str(tls_port), "--tls-auth-clients", "no"]
    tls += ["--tls-cert-file", str(certificate.cert_file)]
    tls += ["--tls-key-file", str(certificate.key_file)]
    url = f"rediss://localhost:{tls_port}/0?ssl_ca_certs={certificate.ca_file}"
    received = Received()
    with private_redis(port, tmp_path / "redis.log", *tls), redis.Redis.from_url(url) as client:
        channel = AnswersChannel(url, channel_name(), received.message, received.lost_one)
        assert channel.open()
        try:
            sent = [bytes([i]) * 100_000 for i in range(3)] + [DATA]  # a TLS record is 16 KiB
            for message in sent:
                client.publish(channel.channel, message)
            wait_until(lambda: len(received.messages) == len(sent), "the messages")
            assert [data for data, _ in received.messages] == sent
        finally:
            channel.close()
    assert received.lost == 0


def test_a_password_and_a_unix_socket_go_through_redis_pys_own_connect(tmp_path: Path) -> None:
    """The subscription is made by redis-py: its AUTH and its Unix sockets work as for every
    other connection; a wrong password is Redis out of reach (told, and tried again)."""
    port, path = free_port(), tmp_path / "redis.sock"
    unix = ["--unixsocket", str(path), "--unixsocketperm", "700"]
    with private_redis(port, tmp_path / "redis.log", *unix):
        with redis.Redis(port=port) as admin:
            admin.config_set("requirepass", "secret")
        for url in (f"redis://:secret@127.0.0.1:{port}/0", f"unix://{path}?db=0&password=secret"):
            received = Received()
            channel = AnswersChannel(url, channel_name(), received.message, received.lost_one)
            assert channel.open(), url
            try:
                with redis.Redis.from_url(url) as client:
                    client.publish(channel.channel, b"in")
                wait_until(lambda r=received: r.messages, f"the message on {url}")
            finally:
                channel.close()
        refused = Received()
        wrong = f"redis://:wrong@127.0.0.1:{port}/0"
        channel = AnswersChannel(wrong, channel_name(), refused.message, refused.lost_one)
        assert not channel.open() and refused.lost == 1
        channel.close()
