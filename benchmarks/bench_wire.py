"""Bytes on the wire per batch of points: over the strokes' WebSocket against POSTed, in one run.

Starts `clickme serve` (embedded default: SQLite, in-process scoring) on a free port with the
demo photos, and plays rounds in Debian's Chromium (Playwright, headless) as a phone does: a
390x844 touch screen with a mobile user agent, consent accepted, a finger painting over the photo
for a few seconds, the next round started from the result. Two pages play side by side, a round
each in turn: one sends its batches over the strokes' socket (`/api/strokes`), the other has the
socket refused (closed before it opens, as a proxy that refuses WebSockets does) and so POSTs
each batch (`POST /api/rounds/{id}/points`).

Per batch it counts, over the socket: each frame's payload and its WebSocket header (the page's
frames masked: 2 + 4 bytes under 126 bytes of payload, 4 + 4 under 65536; the server's unmasked:
2 or 4), and, on a row of its own, the socket's opening handshake (sent once per page) spread
over the page's batches; over HTTP: Chromium's own sizes of each POST's request and response
headers and bodies (Playwright's `request.sizes()`).

    .venv/bin/python benchmarks/bench_wire.py [--rounds 3] [--paint-s 4]

Prints a markdown table: per way, the batches measured, the mean bytes up per batch (headers /
body), down (headers / body), their total and its ratio to the POST's, and what the total takes
on a slow phone link (assumed: 400 kbit/s up, 1.6 Mbit/s down; the TCP/IP and TLS overhead of
each packet, about the same for either way, is not counted). Chromium is /usr/bin/chromium, or
CLICKME_CHROMIUM; the benchmark exits with status 1 and says so when it is missing.
"""

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    Request,
    WebSocket,
    WebSocketRoute,
    expect,
    sync_playwright,
)
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reveal import free_port, start_server

STROKES_PATH = "/api/strokes"
# Headless Chromium as a machine without a display or a sandbox runs it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 3,
}
# An Android phone's Chrome, of the version driven (its client hints say the same).
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.0.0 Mobile Safari/537.36"
)
SOCKET, SOCKET_WITH_HANDSHAKE, POST = "socket", "socket + handshake", "POST"
# The slow phone link the milliseconds are for (an assumption, not a measurement).
UP_BITS_PER_S = 400_000
DOWN_BITS_PER_S = 1_600_000
# A finger's pace: a touch move every frame or so, a few CSS pixels apart.
MOVE_EVERY_MS = 16
STEP_PX = 4.0
# Long enough for any round's time limit (the demo campaign's is 7 s) and the page's finish.
ROUND_END_TIMEOUT_MS = 60_000
Position = tuple[int, int]


def chromium_path() -> Path:
    return Path(os.environ.get("CLICKME_CHROMIUM", "/usr/bin/chromium"))


def frame_header_bytes(payload_bytes: int, masked: bool) -> int:
    """A WebSocket frame's header (RFC 6455 5.2): 2 bytes, 2 or 8 more for a longer payload's
    length, and the 4 bytes of the mask on a client's frame."""
    if payload_bytes < 126:
        length = 2
    elif payload_bytes < 65536:
        length = 4
    else:
        length = 10
    return length + (4 if masked else 0)


def payload_bytes(payload: str | bytes) -> int:
    return len(payload.encode() if isinstance(payload, str) else payload)


@dataclass
class Tally:
    """The bytes of a way's batches, up (page to server) and down, headers apart from bodies."""

    batches: int = 0
    up_headers: int = 0
    up_body: int = 0
    down_headers: int = 0
    down_body: int = 0

    @property
    def up(self) -> int:
        return self.up_headers + self.up_body

    @property
    def down(self) -> int:
        return self.down_headers + self.down_body

    def per_batch(self, value: int) -> float:
        return value / self.batches if self.batches else math.nan

    @property
    def total_per_batch(self) -> float:
        return self.per_batch(self.up + self.down)

    def slow_link_ms(self) -> tuple[float, float]:
        """(up, down) milliseconds per batch on the assumed slow link."""
        return (
            self.per_batch(self.up) * 8 / UP_BITS_PER_S * 1000,
            self.per_batch(self.down) * 8 / DOWN_BITS_PER_S * 1000,
        )


@dataclass
class SocketWatch:
    """The page's strokes' sockets: their frames (as a Tally), and their opening handshakes'
    bytes (request, response), as Chromium's DevTools saw them."""

    frames: Tally = field(default_factory=Tally)
    handshakes: list[tuple[int, int]] = field(default_factory=list)
    extensions: set[str] = field(default_factory=set)

    def sent(self, payload: str | bytes) -> None:
        size = payload_bytes(payload)
        self.frames.batches += 1  # one message a batch (a batch sent again is sent again)
        self.frames.up_headers += frame_header_bytes(size, masked=True)
        self.frames.up_body += size

    def received(self, payload: str | bytes) -> None:
        size = payload_bytes(payload)
        self.frames.down_headers += frame_header_bytes(size, masked=False)
        self.frames.down_body += size

    def with_handshakes(self) -> Tally:
        """The frames, the handshakes' bytes counted as headers."""
        up = sum(request for request, _ in self.handshakes)
        down = sum(response for _, response in self.handshakes)
        frames = self.frames
        return Tally(
            frames.batches,
            frames.up_headers + up,
            frames.up_body,
            frames.down_headers + down,
            frames.down_body,
        )


def is_strokes(url: str) -> bool:
    return urlsplit(url).path == STROKES_PATH


def is_points_post(request: Request) -> bool:
    return request.method == "POST" and urlsplit(request.url).path.endswith("/points")


def headers_text_bytes(first_line: str, headers: dict[str, str]) -> int:
    """An HTTP/1.1 head's bytes: its first line, `name: value` lines, the blank line."""
    lines = [first_line, *(f"{name}: {value}" for name, value in headers.items())]
    return sum(len(line.encode("latin-1", "replace")) + 2 for line in lines) + 2


def origin_form(head: str) -> str:
    """The head with its request line's target as sent to the server: DevTools writes the
    handshake's as an absolute URL (`GET ws://host/api/strokes HTTP/1.1`), the wire has the
    path (`GET /api/strokes HTTP/1.1`)."""
    first, sep, rest = head.partition("\r\n")
    method, target, version = first.split(" ", 2)
    if "://" in target:
        parts = urlsplit(target)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{method} {target} {version}{sep}{rest}"


def handshake_bytes(response: dict[str, Any]) -> tuple[int, int]:
    """(request, response) bytes of an opening handshake from DevTools' response to it: the
    raw heads where Chromium gives them, else rebuilt from their headers."""
    request_text = response.get("requestHeadersText")
    response_text = response.get("headersText")
    request = (
        len(origin_form(request_text).encode("latin-1", "replace"))
        if request_text
        else headers_text_bytes(f"GET {STROKES_PATH} HTTP/1.1", response.get("requestHeaders", {}))
    )
    status_line = f"HTTP/1.1 {response['status']} {response.get('statusText', '')}"
    answer = (
        len(response_text.encode("latin-1", "replace"))
        if response_text
        else headers_text_bytes(status_line, response.get("headers", {}))
    )
    return request, answer


def watch_socket(page: Page) -> SocketWatch:
    """Counts the frames of the page's strokes' sockets, and their handshakes (over DevTools)."""
    watch = SocketWatch()

    def on_socket(socket: WebSocket) -> None:
        if is_strokes(socket.url):
            socket.on("framesent", watch.sent)
            socket.on("framereceived", watch.received)

    page.on("websocket", on_socket)
    cdp = page.context.new_cdp_session(page)
    strokes_ids: set[str] = set()

    def on_request(event: dict[str, Any]) -> None:
        if is_strokes(event["url"]):
            strokes_ids.add(event["requestId"])

    def on_response(event: dict[str, Any]) -> None:
        if event["requestId"] not in strokes_ids:
            return
        response = event["response"]
        watch.handshakes.append(handshake_bytes(response))
        headers = {name.lower(): value for name, value in response.get("headers", {}).items()}
        if headers.get("sec-websocket-extensions"):
            watch.extensions.add(headers["sec-websocket-extensions"])

    cdp.on("Network.webSocketCreated", on_request)
    cdp.on("Network.webSocketHandshakeResponseReceived", on_response)
    cdp.send("Network.enable")
    return watch


def refuse_socket(page: Page) -> None:
    """The strokes' socket closed before it opens, as a refused handshake is: the page POSTs."""

    def refuse(socket: WebSocketRoute) -> None:
        socket.close()

    page.route_web_socket(f"**{STROKES_PATH}", refuse)


def watch_posts(page: Page) -> list[Request]:
    """The page's POSTs of points, once answered."""
    posts: list[Request] = []
    page.on("requestfinished", lambda r: posts.append(r) if is_points_post(r) else None)
    return posts


def tally_posts(posts: list[Request]) -> Tally:
    tally = Tally()
    for request in posts:
        sizes = request.sizes()
        tally.batches += 1
        tally.up_headers += sizes["requestHeadersSize"]
        tally.up_body += sizes["requestBodySize"]
        tally.down_headers += sizes["responseHeadersSize"]
        tally.down_body += sizes["responseBodySize"]
    return tally


def to_client(box: dict[str, float], fx: float, fy: float) -> Position:
    """Whole CSS pixel on the page at a fraction (fx, fy) of the photo's box."""
    return round(box["x"] + fx * box["width"]), round(box["y"] + fy * box["height"])


def line(start: Position, end: Position, step: float) -> list[Position]:
    """Whole-pixel positions from start to end (not included), about `step` pixels apart."""
    (x0, y0), (x1, y1) = start, end
    count = max(1, round(math.hypot(x1 - x0, y1 - y0) / step))
    return [
        (round(x0 + (x1 - x0) * i / count), round(y0 + (y1 - y0) * i / count)) for i in range(count)
    ]


def zigzag(box: dict[str, float], rows: int = 6) -> Iterator[Position]:
    """A stroke sweeping left and right over the middle of the photo, down and up, endlessly."""
    corners = []
    for index, fy in enumerate(0.25 + 0.5 * i / (rows - 1) for i in range(rows)):
        xs = (0.15, 0.85) if index % 2 == 0 else (0.85, 0.15)
        corners += [to_client(box, xs[0], fy), to_client(box, xs[1], fy)]
    there_and_back = corners + corners[::-1]
    for start, end in itertools.pairwise(itertools.cycle(there_and_back)):
        yield from line(start, end, STEP_PX)


def round_is_over(page: Page) -> bool:
    return page.get_by_test_id("round-result").is_visible()


def paint_with_touch(page: Page, cdp: CDPSession, seconds: float) -> None:
    """One finger down on the photo, moving at a finger's pace for `seconds` (or until the round
    ends), and up, through DevTools' touch input."""
    box = page.get_by_test_id("game-canvas").bounding_box()
    assert box is not None, "the canvas is not shown"

    def touch(kind: str, points: list[Position]) -> None:
        touch_points = [{"x": x, "y": y, "radiusX": 4, "radiusY": 4} for x, y in points]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    path = zigzag(box)
    touch("touchStart", [next(path)])
    ends = time.monotonic() + seconds
    for index, position in enumerate(path):
        if time.monotonic() >= ends or (index % 25 == 24 and round_is_over(page)):
            break
        touch("touchMove", [position])
        page.wait_for_timeout(MOVE_EVERY_MS)
    touch("touchEnd", [])


@dataclass
class Player:
    """A phone's page playing round after round, one way."""

    page: Page
    cdp: CDPSession
    rounds: int = 0

    def play_round(self, paint_s: float) -> None:
        """Starts a round (consent first, else the next one from the result), paints, and waits
        for the round's result."""
        if self.rounds == 0:
            self.page.get_by_test_id("consent-accept").click()
        else:
            self.page.get_by_test_id("next-button").click()
        expect(self.page.locator("#game-screen[data-state='playing']")).to_be_visible()
        paint_with_touch(self.page, self.cdp, paint_s)
        result = self.page.get_by_test_id("round-result")
        expect(result).to_be_visible(timeout=ROUND_END_TIMEOUT_MS)
        self.rounds += 1


def open_player(context: BrowserContext, base_url: str) -> Player:
    page = context.new_page()
    page.goto(base_url)
    expect(page.get_by_test_id("consent-accept")).to_be_visible()
    return Player(page, context.new_cdp_session(page))


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; FileNotFoundError when it is not there."""
    path = chromium_path()
    if not path.exists():
        raise FileNotFoundError(
            f"Chromium not found at {path}: install Debian's chromium package, or set "
            "CLICKME_CHROMIUM to a Chromium binary"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def served() -> Iterator[str]:
    """A real `clickme serve` with the demo photos in a temporary data dir: its base URL."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        server = start_server(Path(data_dir), port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


@dataclass(frozen=True)
class Measured:
    """Per way, its Tally; and the extensions the strokes' socket agreed on (none expected)."""

    tallies: dict[str, Tally]
    socket_extensions: set[str]
    sockets_opened: int


def play_both_ways(
    browser: Browser, base_url: str, rounds: int, paint_s: float, progress: bool
) -> Measured:
    """`rounds` rounds on each of two phones' pages, in turn (the first of the two alternating):
    one over the strokes' socket, the other with it refused."""
    user_agent = PHONE_USER_AGENT.format(major=browser.version.split(".")[0])
    contexts = [browser.new_context(**PHONE, user_agent=user_agent) for _ in range(2)]
    try:
        over_socket, over_http = (open_player(context, base_url) for context in contexts)
        sockets = watch_socket(over_socket.page)
        refuse_socket(over_http.page)
        posts = watch_posts(over_http.page)
        stray = watch_socket(over_http.page)
        for index in tqdm(range(rounds), desc="rounds (each way)", disable=not progress):
            turn = [over_socket, over_http] if index % 2 == 0 else [over_http, over_socket]
            for player in turn:
                player.play_round(paint_s)
        # the last answers' events handled
        over_socket.page.wait_for_timeout(200)
        assert not stray.frames.batches, "a batch went over the refused socket"
        tallies = {
            SOCKET: sockets.frames,
            SOCKET_WITH_HANDSHAKE: sockets.with_handshakes(),
            POST: tally_posts(posts),
        }
        return Measured(tallies, sockets.extensions, len(sockets.handshakes))
    finally:
        for context in contexts:
            context.close()


def measure(rounds: int, paint_s: float, progress: bool = True) -> Measured:
    """The benchmark's measurement: a server, a Chromium, `rounds` rounds each way."""
    with chromium() as browser, served() as base_url:
        return play_both_ways(browser, base_url, rounds, paint_s, progress)


def ratio(tally: Tally, post: Tally) -> str:
    return f"{tally.total_per_batch / post.total_per_batch:.3f}" if post.batches else "n/a"


def table(measured: Measured) -> list[str]:
    post = measured.tallies[POST]
    lines = [
        "| way | batches | up B/batch (headers / body) | down B/batch (headers / body) "
        "| total B/batch | ÷ POST | slow link ms/batch (up + down) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, tally in measured.tallies.items():
        up_ms, down_ms = tally.slow_link_ms()
        per = tally.per_batch
        lines.append(
            f"| {name} | {tally.batches} "
            f"| {per(tally.up):.0f} ({per(tally.up_headers):.0f} / {per(tally.up_body):.0f}) "
            f"| {per(tally.down):.0f} ({per(tally.down_headers):.0f} / "
            f"{per(tally.down_body):.0f}) "
            f"| {tally.total_per_batch:.0f} | {ratio(tally, post)} "
            f"| {up_ms + down_ms:.1f} ({up_ms:.1f} + {down_ms:.1f}) |"
        )
    return lines


def report(measured: Measured, rounds: int) -> str:
    handshakes = measured.sockets_opened
    notes = [
        "",
        f"{rounds} round(s) each way, a phone's page each (390x844, touch, mobile user agent).",
        "socket: each frame's payload + its WebSocket header (up, masked: 6 bytes, 8 from 126 "
        "bytes of payload; down: 2, 4 from 126); + handshake: the "
        f"{handshakes} opening handshake(s) of the page's "
        "socket (request and 101 response heads, sent once per page) spread over its batches.",
        "POST: Chromium's sizes of each POST /api/rounds/{id}/points (request and response heads "
        "and bodies), over HTTP/1.1 on a kept-alive connection.",
        f"Slow link: assumed {UP_BITS_PER_S / 1000:.0f} kbit/s up and "
        f"{DOWN_BITS_PER_S / 1_000_000:.1f} Mbit/s down, bytes only (not measured; the latency "
        "of the round trip and the TCP/IP and TLS overhead of each packet are not counted).",
    ]
    if measured.socket_extensions:
        notes.append(
            "The socket agreed on extensions (its payloads may be compressed on the wire, "
            f"counted uncompressed here): {sorted(measured.socket_extensions)}"
        )
    return "\n".join(["", *table(measured), *notes])


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=positive(int), default=3, help="rounds each way")
    parser.add_argument(
        "--paint-s", type=positive(float), default=4.0, help="seconds of painting per round"
    )
    return parser.parse_args(argv)


def positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0: {text}")
        return value

    return parse


def main() -> None:
    args = arguments()
    if not chromium_path().exists():
        sys.exit(
            f"bench_wire: Chromium not found at {chromium_path()}: install Debian's chromium "
            "package, or set CLICKME_CHROMIUM to a Chromium binary"
        )
    measured = measure(args.rounds, args.paint_s)
    print(report(measured, args.rounds))


if __name__ == "__main__":
    main()
