"""``bench_wire.py``, briefly: a round each way in a real Chromium against a real server, and
figures that make sense (a batch over the socket carries fewer bytes than its POST)."""

import os

import pytest

from benchmarks import bench_wire


def test_frame_headers_are_counted_as_rfc_6455_sizes_them() -> None:
    assert bench_wire.frame_header_bytes(125, masked=True) == 6
    assert bench_wire.frame_header_bytes(126, masked=True) == 8
    assert bench_wire.frame_header_bytes(125, masked=False) == 2
    assert bench_wire.frame_header_bytes(65535, masked=False) == 4
    assert bench_wire.frame_header_bytes(65536, masked=False) == 10


def test_the_handshake_request_line_is_counted_with_the_path_sent() -> None:
    head = "GET ws://127.0.0.1:8000/api/strokes HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
    expected = "GET /api/strokes HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
    assert bench_wire.origin_form(head) == expected


@pytest.mark.browser
def test_a_round_each_way_sends_fewer_bytes_per_batch_over_the_socket() -> None:
    path = bench_wire.chromium_path()
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium missing in CI: {path}")
        pytest.skip(f"Chromium not found: {path}")

    measured = bench_wire.measure(rounds=1, paint_s=1.5, progress=False)

    socket = measured.tallies[bench_wire.SOCKET]
    with_handshake = measured.tallies[bench_wire.SOCKET_WITH_HANDSHAKE]
    post = measured.tallies[bench_wire.POST]
    assert socket.batches >= 1 and post.batches >= 1
    assert measured.sockets_opened == 1, "the page opened its socket once, for its rounds"
    assert not measured.socket_extensions, "the socket's frames were compressed"
    # a frame's header per message each way (the page's masked)
    assert 6 <= socket.per_batch(socket.up_headers) <= 8
    assert 2 <= socket.per_batch(socket.down_headers) <= 4
    assert 0 < socket.total_per_batch < with_handshake.total_per_batch < post.total_per_batch
    # the POST's request head carries the cookie, the user agent and more, each time
    assert post.per_batch(post.up_headers) > 200
    assert post.per_batch(post.down_headers) > 200  # and its answer the security headers
    report = bench_wire.report(measured, rounds=1)
    assert "| POST |" in report and "assumed 400 kbit/s up" in report
