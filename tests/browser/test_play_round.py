"""Rounds in a real Chromium against the real server: painting, live guesses (over the strokes'
socket, or POSTed where it is refused), result, data."""

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import sqlalchemy as sa
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Response,
    Route,
    WebSocket,
    WebSocketRoute,
    expect,
)

from tests.browser.conftest import wait_until
from tests.live_server import LiveServer

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 3,
}
# Stored points: little-endian float32 x, float32 y, int32 t (docs of point_batches).
STORED_POINT = np.dtype([("x", "<f4"), ("y", "<f4"), ("t", "<i4")])
MIN_POINT_SPACING_PX = 4.0
MATCH_TOLERANCE_PX = 0.75
Position = tuple[int, int]
RESULT_TEXT = re.compile(r"^(Correct! \+\d+|Time's up)$")
# The strokes' WebSocket: the page's batches of points, each answered as its POST would be.
STROKES_PATH = "/api/strokes"


@dataclass(frozen=True)
class PlayedRound:
    """The round the page started, as the server announced it, and where its photo is on screen."""

    round_id: int
    width: int
    height: int
    time_limit_ms: int
    class_name: str
    box: dict[str, float]

    def to_client(self, fx: float, fy: float) -> tuple[int, int]:
        """Whole CSS pixel on the page at a fraction (fx, fy) of the photo."""
        return (
            round(self.box["x"] + fx * self.box["width"]),
            round(self.box["y"] + fy * self.box["height"]),
        )

    def to_native(self, position: tuple[float, float]) -> tuple[float, float]:
        x, y = position
        return (
            (x - self.box["x"]) / self.box["width"] * self.width,
            (y - self.box["y"]) / self.box["height"] * self.height,
        )


@pytest.fixture
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**DESKTOP)
    yield context
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**PHONE)
    yield context
    context.close()


def _is_round_start(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/rounds")


def _is_points_post(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/points")


def _is_reveal(response: Response) -> bool:
    return _is_points_post(response.request)


@dataclass
class Strokes:
    """How the page sent its batches of points: the strokes' sockets it opened, the messages it
    sent over them and the answers it received, and its POSTs of points (the HTTP fallback)."""

    sockets: list[WebSocket] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    posts: list[Request] = field(default_factory=list)

    def reveals(self, round_id: int) -> list[dict]:
        """The round's reveals, as received over the socket."""
        return [a["body"] for a in self.answers if a["round_id"] == round_id and a["status"] == 200]

    def batches(self, round_id: int) -> list[dict]:
        """The round's batches, as sent over the socket."""
        return [message for message in self.sent if message["round_id"] == round_id]


def watch_strokes(page: Page) -> Strokes:
    """Records the page's strokes' sockets, their frames, and its POSTs of points."""
    strokes = Strokes()

    def on_socket(socket: WebSocket) -> None:
        if urlsplit(socket.url).path != STROKES_PATH:
            return
        strokes.sockets.append(socket)
        socket.on("framesent", lambda payload: strokes.sent.append(json.loads(payload)))
        socket.on("framereceived", lambda payload: strokes.answers.append(json.loads(payload)))

    page.on("websocket", on_socket)
    page.on("request", lambda r: strokes.posts.append(r) if _is_points_post(r) else None)
    return strokes


def socket_url(base_url: str) -> str:
    """The strokes' socket of the server at base_url (ws: for http:, wss: for https:)."""
    return f"{base_url.replace('http', 'ws', 1)}{STROKES_PATH}"


def assert_sent_over_the_socket(strokes: Strokes, engine: sa.Engine, round_id: int) -> None:
    """Every batch the round stored came over the socket, as sent, and was answered there; none
    was POSTed."""
    assert not strokes.posts, [request.url for request in strokes.posts]
    first_tries = {}
    for message in strokes.batches(round_id):
        first_tries.setdefault(message["seq"], message)
    batches = stored_batches(engine, round_id)
    assert sorted(first_tries) == [row.seq for row in batches] != []
    for row in batches:
        stored = np.frombuffer(row.data, dtype=STORED_POINT)
        sent = first_tries[row.seq]["points"]
        assert stored["x"].tolist() == pytest.approx([point[0] for point in sent])
        assert stored["t"].tolist() == [point[2] for point in sent]
    answered = {a["seq"] for a in strokes.answers if a["round_id"] == round_id}
    assert answered == set(first_tries), "a batch was not answered over the socket"


def accept_consent_and_start(page: Page, live_server: LiveServer) -> PlayedRound:
    """Opens the game as a first-time visitor, accepts consent, and waits for the photo."""
    page.goto(live_server.base_url)
    expect(page.get_by_test_id("consent-accept")).to_be_visible()
    with page.expect_response(_is_round_start) as started:
        page.get_by_test_id("consent-accept").click()
    assert started.value.status == 201, started.value.text()
    body = started.value.json()
    expect(page.locator("#game-screen[data-state='playing']")).to_be_visible()
    canvas = page.get_by_test_id("game-canvas")
    box = canvas.bounding_box()
    assert box is not None
    return PlayedRound(
        round_id=body["round_id"],
        width=body["image"]["width"],
        height=body["image"]["height"],
        time_limit_ms=body["time_limit_ms"],
        class_name=body["class_name"],
        box=box,
    )


def line(start: Position, end: Position, step: float) -> list[Position]:
    """Whole-pixel positions from start to end, about `step` CSS pixels apart."""
    (x0, y0), (x1, y1) = start, end
    count = max(1, round(np.hypot(x1 - x0, y1 - y0) / step))
    return [
        (round(x0 + (x1 - x0) * i / count), round(y0 + (y1 - y0) * i / count))
        for i in range(count + 1)
    ]


def zigzag(
    played: PlayedRound, rows: list[float], x_span: tuple[float, float], step: float
) -> list[Position]:
    """One continuous stroke sweeping left and right over the rows (fractions of the photo)."""
    corners = []
    for index, fy in enumerate(rows):
        xs = x_span if index % 2 == 0 else x_span[::-1]
        corners += [played.to_client(xs[0], fy), played.to_client(xs[1], fy)]
    path = [corners[0]]
    for start, end in itertools.pairwise(corners):
        path += line(start, end, step)[1:]
    return path


def percent(guess: dict) -> str:
    return "under 1%" if guess["probability"] < 0.005 else f"{round(guess['probability'] * 100)}%"


def winning_words(class_name: str, guesses: list[dict]) -> str:
    """The result's words when the DNN got it: the class's rank and probability."""
    rank = [guess["name"] for guess in guesses].index(class_name)
    place = "its first guess" if rank == 0 else f"guess #{rank + 1}"
    return f"The DNN saw the {class_name} thanks to you: {place}, {percent(guesses[rank])} sure."


def losing_words(class_name: str, guesses: list[dict]) -> str:
    """The result's words when time ran out: what the DNN guessed instead."""
    top = ", ".join(f"{guess['name']} ({percent(guess)})" for guess in guesses[:3])
    return f"The DNN did not see the {class_name}: it guessed {top}."


def round_is_over(page: Page) -> bool:
    return page.get_by_test_id("round-result").is_visible()


def paint_with_mouse(page: Page, positions: list[Position]) -> list[Position]:
    """Presses, moves through the positions, releases; returns the positions actually visited."""
    page.mouse.move(*positions[0])
    page.mouse.down()
    visited = [positions[0]]
    for index, position in enumerate(positions[1:], start=1):
        if index % 25 == 0 and round_is_over(page):
            break
        page.mouse.move(*position)
        visited.append(position)
    page.mouse.up()
    return visited


def paint_with_touch(page: Page, positions: list[Position]) -> list[Position]:
    """One finger down, along the positions, and up, through the DevTools touch input."""
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, points: list[Position]) -> None:
        touch_points = [{"x": x, "y": y, "radiusX": 4, "radiusY": 4} for x, y in points]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    touch("touchStart", positions[:1])
    visited = [positions[0]]
    for index, position in enumerate(positions[1:], start=1):
        if index % 25 == 0 and round_is_over(page):
            break
        touch("touchMove", [position])
        visited.append(position)
    touch("touchEnd", [])
    cdp.detach()
    return visited


def stored_batches(engine: sa.Engine, round_id: int) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT seq, n_points, data FROM point_batches WHERE round_id = :id ORDER BY seq"
            ),
            {"id": round_id},
        ).all()


def stored_round(engine: sa.Engine, round_id: int) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT outcome, score, pointer_type, n_points, last_seq FROM rounds WHERE id = :id"
            ),
            {"id": round_id},
        ).one()


def stored_points(engine: sa.Engine, round_id: int) -> np.ndarray:
    """Every point of the round in the order stored, checking each batch's declared size."""
    batches = stored_batches(engine, round_id)
    assert [row.seq for row in batches] == list(range(1, len(batches) + 1))
    chunks = []
    for row in batches:
        chunk = np.frombuffer(row.data, dtype=STORED_POINT)
        assert len(chunk) == row.n_points
        chunks.append(chunk)
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=STORED_POINT)


def assert_traces_path(points: np.ndarray, played: PlayedRound, visited: list[Position]) -> None:
    """Each stored point is a painted position (in native pixels), in the order painted."""
    path = np.array([played.to_native(position) for position in visited])
    cursor = 0
    for x, y in zip(points["x"], points["y"], strict=True):
        distances = np.hypot(path[cursor:, 0] - x, path[cursor:, 1] - y)
        matches = np.flatnonzero(distances <= MATCH_TOLERANCE_PX)
        assert matches.size, f"({x:.1f}, {y:.1f}) is not on the painted path after #{cursor}"
        cursor += int(matches[0])
    steps = np.hypot(np.diff(points["x"]), np.diff(points["y"]))
    assert steps.min() >= MIN_POINT_SPACING_PX - 0.01, "near-duplicate points were sent"
    assert np.all(np.diff(points["t"]) >= 0), "t decreased"
    assert points["t"][0] >= 0 and points["t"][-1] <= played.time_limit_ms


def reveal_bodies(responses: list[Response]) -> list[dict]:
    return [json.loads(response.text()) for response in responses if response.ok]


def test_desktop_round_paints_guesses_and_stores_the_path(
    desktop: BrowserContext, live_server: LiveServer, shots_dir: Path
) -> None:
    page = desktop.new_page()
    strokes = watch_strokes(page)
    starts: list[Response] = []
    page.on("response", lambda r: starts.append(r) if _is_round_start(r) and r.ok else None)
    played = accept_consent_and_start(page, live_server)
    page.screenshot(path=shots_dir / "desktop-start.png")

    corner = line(played.to_client(0.03, 0.05), played.to_client(0.12, 0.05), 6)
    visited = paint_with_mouse(page, corner)
    wait_until(
        page, lambda: bool(strokes.reveals(played.round_id)), "no reveal came over the socket"
    )
    guesses = page.get_by_test_id("dnn-guesses").locator("li")
    expect(guesses).to_have_count(5)

    visited += paint_with_mouse(page, zigzag(played, [0.3, 0.4, 0.5, 0.6, 0.7], (0.12, 0.88), 6))
    result = page.get_by_test_id("round-result")
    expect(result).to_be_visible(timeout=played.time_limit_ms + 10_000)
    page.screenshot(path=shots_dir / "desktop-result.png")

    bodies = strokes.reveals(played.round_id)
    assert len(bodies) >= 2
    assert len({json.dumps(body["guesses"]) for body in bodies}) >= 2, "guesses never changed"
    shown = page.get_by_test_id("dnn-guesses").locator(".guess-name").all_inner_texts()
    assert shown == [guess["name"] for guess in bodies[-1]["guesses"]]

    title = page.locator("#result-title").inner_text()
    assert RESULT_TEXT.match(title), title
    row = stored_round(live_server.engine, played.round_id)
    assert row.outcome in {"correct", "timeout"}
    detail = page.locator("#result-detail")
    if row.outcome == "correct":
        assert title == f"Correct! +{row.score}"
        assert 0 < row.score <= 100
        expect(detail).to_have_text(winning_words(played.class_name, bodies[-1]["guesses"]))
    else:
        assert title == "Time's up"
        expect(detail).to_have_text(losing_words(played.class_name, bodies[-1]["guesses"]))
    expect(page.get_by_test_id("player-score")).to_have_text(str(row.score))
    expect(page.get_by_test_id("leaderboard")).to_contain_text("(you)")

    points = stored_points(live_server.engine, played.round_id)
    assert row.pointer_type == "mouse"
    assert row.n_points == len(points)
    assert row.last_seq == len(stored_batches(live_server.engine, played.round_id))
    assert len(points) >= 10
    assert_traces_path(points, played, visited)
    assert_sent_over_the_socket(strokes, live_server.engine, played.round_id)
    assert [socket.url for socket in strokes.sockets] == [socket_url(live_server.base_url)]

    # Its one photo seen, the demo plays it again (the game made the round while the result
    # showed): a replay, said to be one, that counts nowhere.
    expect(page.get_by_test_id("repeat-notice")).to_be_hidden()
    page.get_by_test_id("next-button").click()
    notice = page.get_by_test_id("repeat-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("not counted")
    assert [start.json()["repeat"] for start in starts] == [False, True]
    page.screenshot(path=shots_dir / "desktop-repeat.png")
    # A campaign that does not repeat ends once every photo is seen.
    set_repeats(live_server.engine, False)
    try:
        paint_with_mouse(page, zigzag(played, [0.3, 0.4, 0.5, 0.6, 0.7], (0.12, 0.88), 6))
        expect(result).to_be_visible(timeout=played.time_limit_ms + 10_000)
        expect(page.get_by_test_id("player-score")).to_have_text(str(row.score))
        page.get_by_test_id("next-button").click()
        expect(page.get_by_test_id("done-screen")).to_be_visible()
    finally:
        set_repeats(live_server.engine, True)
    expect(page.locator("#done-score")).to_have_text(str(row.score))
    page.screenshot(path=shots_dir / "desktop-done.png")
    # The replay's batches too, over the socket opened for the first round.
    replay = starts[1].json()["round_id"]
    assert_sent_over_the_socket(strokes, live_server.engine, replay)
    assert {message["round_id"] for message in strokes.sent} == {played.round_id, replay}
    assert len(strokes.sockets) == 1


def set_repeats(engine: sa.Engine, on: bool) -> None:
    """Whether the live server's demo campaign plays its photos again once all are seen."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE campaigns SET repeat_when_exhausted = :on WHERE slug = 'default'"),
            {"on": on},
        )


def test_phone_round_paints_with_touch_without_scrolling(
    phone: BrowserContext, live_server: LiveServer, shots_dir: Path
) -> None:
    page = phone.new_page()
    strokes = watch_strokes(page)
    played = accept_consent_and_start(page, live_server)
    assert played.box["x"] >= 0 and played.box["x"] + played.box["width"] <= 390
    skip_box = page.get_by_test_id("skip-button").bounding_box()
    assert skip_box is not None and skip_box["height"] >= 44
    assert skip_box["y"] + skip_box["height"] <= 844, "the skip button is below the fold"
    assert played.box["width"] >= 390 - 2 * 16, "the photo does not use the phone's width"
    expect(page.locator("#guesses-heading")).to_be_visible()
    name = page.get_by_test_id("player-name")
    assert name.evaluate("el => el.scrollWidth <= el.clientWidth"), "the name is cut off"

    page.screenshot(path=shots_dir / "phone-start.png")
    visited = paint_with_touch(page, zigzag(played, [0.3, 0.45, 0.6, 0.75], (0.1, 0.9), 4))
    assert page.evaluate("window.scrollY") == 0, "painting scrolled the page"
    expect(page.get_by_test_id("round-result")).to_be_visible(timeout=played.time_limit_ms + 10_000)
    page.screenshot(path=shots_dir / "phone-result.png")
    assert RESULT_TEXT.match(page.locator("#result-title").inner_text())

    row = stored_round(live_server.engine, played.round_id)
    assert row.outcome in {"correct", "timeout"}
    assert row.pointer_type == "touch"
    points = stored_points(live_server.engine, played.round_id)
    # A DNN that guesses early ends the round (later points are not sent): a few points at least.
    assert len(points) >= (10 if row.outcome == "timeout" else 3)
    assert_traces_path(points, played, visited)
    assert_sent_over_the_socket(strokes, live_server.engine, played.round_id)


def test_reduced_motion_turns_transitions_off(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(**PHONE, reduced_motion="reduce")
    page = context.new_page()
    page.goto(live_server.base_url)
    button = page.get_by_test_id("consent-accept")
    expect(button).to_be_visible()
    assert button.evaluate("el => getComputedStyle(el).transitionDuration") == "0s"
    context.close()


def test_skip_and_rename(desktop: BrowserContext, live_server: LiveServer, shots_dir: Path) -> None:
    page = desktop.new_page()
    played = accept_consent_and_start(page, live_server)
    page.get_by_role("button", name="Change your name").click()
    page.get_by_role("textbox", name="Your name").fill("Painter of Fish")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("player-name")).to_have_text("Painter of Fish")

    expect(page.get_by_test_id("class-name")).to_have_text("espresso")  # its only name
    page.get_by_test_id("skip-button").click()
    expect(page.locator("#result-title")).to_have_text("Skipped")
    detail = page.locator("#result-detail")
    expect(detail).to_have_text("No points this time: on to the next photo.")
    page.screenshot(path=shots_dir / "desktop-skipped.png")
    assert stored_round(live_server.engine, played.round_id).outcome == "skip"
    with live_server.engine.connect() as connection:
        names = connection.execute(sa.text("SELECT display_name FROM players")).scalars().all()
    assert "Painter of Fish" in names


def busy_answer(message: str) -> str:
    """The socket's answer to a batch when the DNN is busy, as the server gives it."""
    batch = json.loads(message)
    body = {"error": {"code": "scorer_busy", "message": "the DNN partner is busy, try again"}}
    answer = {"round_id": batch["round_id"], "seq": batch["seq"], "status": 503}
    return json.dumps({**answer, "retry_after": None, "body": body})


def test_a_batch_refused_while_the_dnn_is_busy_is_sent_again_unchanged_and_time_runs_out(
    desktop: BrowserContext, live_server: LiveServer, shots_dir: Path
) -> None:
    page = desktop.new_page()
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if _is_points_post(r) else None)
    sent: list[str] = []  # the page's messages over the socket, as sent
    from_server: list[str] = []  # the server's answers
    delivered: list[dict] = []  # the server's answers the page was given
    # The 5th try waits here until the test has seen the busy notice (however slowly the machine
    # painted, the notice cannot be gone before the test looks).
    held: list[Callable[[], None]] = []

    def busy_then_through(socket: WebSocketRoute) -> None:
        """1st try: stored, but the DNN's answer comes too late (503 scorer_busy, as the server
        answers then); 2nd to 4th: shed before being stored (503 scorer_busy); then through."""
        server = socket.connect_to_server()

        def from_page(message: str | bytes) -> None:
            assert isinstance(message, str)
            sent.append(message)
            if len(sent) == 1:
                server.send(message)
            elif len(sent) <= 4:
                socket.send(busy_answer(message))
            elif len(sent) == 5:
                held.append(lambda: server.send(message))
            else:
                server.send(message)

        def to_page(message: str | bytes) -> None:
            assert isinstance(message, str)
            from_server.append(message)
            if len(from_server) == 1:  # the answer to the 1st try
                socket.send(busy_answer(sent[0]))
            else:
                delivered.append(json.loads(message))
                socket.send(message)

        socket.on_message(from_page)
        server.on_message(to_page)

    finishes: list[str] = []

    def early_first_finish(route: Route) -> None:
        """The first finish answers as if the server's clock still ran; the page must ask again."""
        finishes.append(route.request.url)
        if len(finishes) == 1:
            body = {"error": {"code": "round_running", "message": "not yet"}}
            route.fulfill(status=409, json=body)
        else:
            route.continue_()

    page.route_web_socket(f"**{STROKES_PATH}", busy_then_through)
    page.route("**/api/rounds/*/finish", early_first_finish)
    played = accept_consent_and_start(page, live_server)
    busy = page.get_by_text("The DNN partner is busy")
    # Along the left edge, outside the DNN's centre crop: the DNN cannot get it, time runs out.
    left_edge = line(played.to_client(0.05, 0.15), played.to_client(0.05, 0.85), 6)
    paint_with_mouse(page, left_edge)
    expect(busy).to_be_visible()
    page.screenshot(path=shots_dir / "desktop-busy.png")
    # The 5th try comes after the page's back-off (3.75 s in all).
    wait_until(page, lambda: bool(held), "the batch was not sent a 5th time")
    held[0]()
    wait_until(page, lambda: bool(delivered), "the 5th try was not answered")
    assert delivered[0]["status"] == 200
    reveal = delivered[0]["body"]
    assert reveal["seq"] == 1 and reveal["duplicate"] is True
    assert len(sent) >= 5 and sent[1:5] == [sent[0]] * 4
    expect(busy).to_be_hidden()

    title = page.locator("#result-title")
    expect(title).to_have_text("Time's up", timeout=played.time_limit_ms + 10_000)
    expect(page.locator("#result-detail")).to_have_text(
        losing_words(played.class_name, reveal["guesses"])
    )
    assert stored_round(live_server.engine, played.round_id).outcome == "timeout"
    # Asked again after the refusal; once more if the server's clock (started by the page's start
    # call, a round trip after the page's own) had not yet run out.
    assert len(finishes) >= 2
    batches = stored_batches(live_server.engine, played.round_id)
    first = json.loads(sent[0])
    assert first["round_id"] == played.round_id
    assert batches[0].seq == 1 == first["seq"]
    stored = np.frombuffer(batches[0].data, dtype=STORED_POINT)
    assert stored["x"].tolist() == pytest.approx([p[0] for p in first["points"]])
    assert stored["t"].tolist() == [p[2] for p in first["points"]]
    # Every batch, and every try of one, went over the socket: the busy answers did not make
    # the page give it up for HTTP.
    assert not posts, [request.url for request in posts]
    assert {json.loads(message)["seq"] for message in sent} >= {row.seq for row in batches}


def test_a_refused_socket_falls_back_to_posting_the_points(
    desktop: BrowserContext, live_server: LiveServer
) -> None:
    """A proxy or network that refuses the strokes' socket: the page POSTs each batch instead
    (POST /api/rounds/{id}/points), and the round plays as over the socket."""
    page = desktop.new_page()
    refused: list[str] = []
    carried: list[str | bytes] = []

    def refuse(socket: WebSocketRoute) -> None:
        """Closed before it opens, as a refused handshake is."""
        refused.append(socket.url)
        socket.on_message(lambda message: carried.append(message))
        socket.close()

    page.route_web_socket(f"**{STROKES_PATH}", refuse)
    posted: list[Response] = []
    page.on("response", lambda response: posted.append(response) if _is_reveal(response) else None)
    played = accept_consent_and_start(page, live_server)
    visited = paint_with_mouse(page, zigzag(played, [0.3, 0.4, 0.5, 0.6, 0.7], (0.12, 0.88), 6))
    expect(page.get_by_test_id("round-result")).to_be_visible(timeout=played.time_limit_ms + 10_000)
    assert refused and set(refused) == {socket_url(live_server.base_url)}
    assert not carried, "a batch went over the refused socket"

    assert posted and [response.status for response in posted] == [200] * len(posted)
    assert {urlsplit(r.url).path for r in posted} == {f"/api/rounds/{played.round_id}/points"}
    bodies = reveal_bodies(posted)
    shown = page.get_by_test_id("dnn-guesses").locator(".guess-name").all_inner_texts()
    assert len(shown) == 5 and shown == [guess["name"] for guess in bodies[-1]["guesses"]]
    assert RESULT_TEXT.match(page.locator("#result-title").inner_text())

    row = stored_round(live_server.engine, played.round_id)
    assert row.outcome in {"correct", "timeout"}
    posted_batches = [json.loads(response.request.post_data or "") for response in posted]
    assert row.last_seq == len(posted_batches)
    assert [batch["seq"] for batch in posted_batches] == list(range(1, row.last_seq + 1))
    points = stored_points(live_server.engine, played.round_id)
    sent_points = [point for batch in posted_batches for point in batch["points"]]
    assert points["x"].tolist() == pytest.approx([point[0] for point in sent_points])
    assert len(points) >= 3
    assert_traces_path(points, played, visited)


def test_a_new_round_refused_while_the_dnn_is_busy_is_asked_again(
    desktop: BrowserContext, live_server: LiveServer
) -> None:
    page = desktop.new_page()
    accept_consent_and_start(page, live_server)
    refused: list[str] = []
    message = "the DNN partner is busy with other players: a new image shortly"

    def busy_twice(route: Route) -> None:
        """The next two round starts are refused as a saturated server refuses them."""
        if route.request.method == "POST" and len(refused) < 2:
            refused.append(route.request.url)
            route.fulfill(status=503, json={"error": {"code": "scorer_busy", "message": message}})
        else:
            route.continue_()

    page.route("**/api/rounds", busy_twice)
    page.get_by_test_id("skip-button").click()
    expect(page.locator("#result-title")).to_have_text("Skipped")
    notice = page.locator("#round-error")
    with page.expect_response(lambda r: _is_round_start(r) and r.status == 201, timeout=20_000):
        page.get_by_test_id("next-button").click()
        expect(notice).to_have_text(message)  # shown while the page waits to ask again
    expect(page.locator("#game-screen[data-state='playing']")).to_be_visible()
    expect(notice).to_be_hidden()
    assert len(refused) == 2
