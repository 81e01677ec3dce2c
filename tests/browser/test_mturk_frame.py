"""MTurk shows the game in a cross-site frame over HTTPS: in a real Chromium, a page on one
HTTPS origin (127.0.0.1) frames the game on another site (localhost); the participant consents
and plays a round inside the frame with the player cookie working there (SameSite=None; Secure;
Partitioned), as one player; a page on an origin the CSP does not name cannot frame the game.

The certificates are made by the test (trustme); Chromium trusts the server's certificate by its
public key's hash (--ignore-certificate-errors-spki-list), not by ignoring certificate errors."""

import base64
import hashlib
import http.server
import math
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright

from clickme.campaigns import service
from clickme.campaigns.schemas import CampaignCreate
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.images.models import ImageSet
from clickme.players.models import Player
from clickme.scoring.registry import get_model_spec
from clickme.scoring.service import ensure_model_row
from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_PATH, wait_until
from tests.browser.test_play_round import assert_sent_over_the_socket, socket_url, watch_strokes
from tests.live_server import answers, free_port, prepared_env, stop_process, wait_until_up

pytestmark = pytest.mark.browser

SLUG = "mturk-hit"
MTURK_QUERY = "workerId=W1&assignmentId=A1&hitId=H1"


@dataclass(frozen=True)
class Origins:
    game: str  # https://localhost:P, the game
    framer: str  # https://127.0.0.1:Q, a page the CSP lets frame the game
    stranger: str  # https://127.0.0.1:R, a page it does not
    database: Path  # the game's SQLite file


def spki_hash(certificate_pem: bytes) -> str:
    """The base64 SHA-256 of the certificate's public key, as Chromium's flag wants it."""
    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def framing_server(context: ssl.SSLContext, page_html: str) -> http.server.ThreadingHTTPServer:
    """An HTTPS server on a free port answering every GET with the framing page."""

    class FramingPage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FramingPage)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def add_campaign(database_path: Path) -> None:
    database = Database(f"sqlite:///{database_path}")
    try:
        with database.session() as session:
            body = CampaignCreate(
                name="A HIT",
                slug=SLUG,
                image_set_id=session.scalar(sa.select(ImageSet.id).where(ImageSet.name == "demo")),
                model_id=ensure_model_row(session, get_model_spec(Settings().model)).id,
                instructions_text="Paint the object.",
            )
            service.change_state(session, service.create_campaign(session, body), "active")
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def certificate() -> trustme.LeafCert:
    return trustme.CA().issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def origins(
    certificate: trustme.LeafCert, models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Origins]:
    """The game served by uvicorn over TLS, and two framing pages on other HTTPS origins."""
    root = tmp_path_factory.mktemp("mturk")
    cert_file, key_file = root / "cert.pem", root / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert_file)
    certificate.private_key_pem.write_to_path(key_file)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(tls)
    game_port = free_port()
    game = f"https://localhost:{game_port}"
    frame = f'<iframe src="{game}/?campaign={SLUG}&{MTURK_QUERY}" width="1100" height="760">'
    page_html = f"<!doctype html><title>HIT</title>{frame}</iframe>"
    framer, stranger = framing_server(tls, page_html), framing_server(tls, page_html)
    framer_origin = f"https://127.0.0.1:{framer.server_address[1]}"
    env = prepared_env(
        root, models_cache_dir, ["import-demo"], CLICKME_FRAME_ANCESTORS=framer_origin
    )
    add_campaign(root / "data" / "clickme.db")
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", "clickme.app:create_app"),
        *("--host", "127.0.0.1", "--port", str(game_port)),
        *("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)),
    ]
    log_path = root / "server.log"
    with log_path.open("ab") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(answers(f"{game}/healthz", verify=False), "uvicorn", server, log_path)
        stranger_origin = f"https://127.0.0.1:{stranger.server_address[1]}"
        yield Origins(game, framer_origin, stranger_origin, root / "data" / "clickme.db")
    finally:
        stop_process(server)
        framer.shutdown()
        stranger.shutdown()


@pytest.fixture(scope="module")
def trusting_browser(certificate: trustme.LeafCert) -> Iterator[Browser]:
    """Chromium trusting the test's certificate (by its key's hash) and nothing else new."""
    if not CHROMIUM_PATH.exists():
        pytest.skip(f"Chromium not found: {CHROMIUM_PATH}")
    key_hash = spki_hash(certificate.cert_chain_pems[0].bytes())
    trust = f"--ignore-certificate-errors-spki-list={key_hash}"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=[*CHROMIUM_ARGS, trust]
        )
        yield chromium
        chromium.close()


def csp_messages(page: Page) -> list[str]:
    messages: list[str] = []
    page.on(
        "console",
        lambda message: (
            messages.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return messages


def is_round_start(response: Response) -> bool:
    return response.url.endswith("/api/rounds") and response.request.method == "POST"


def test_a_participant_consents_and_plays_inside_the_frame(
    trusting_browser: Browser, origins: Origins
) -> None:
    context = trusting_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    violations = csp_messages(page)
    strokes = watch_strokes(page)
    page.goto(origins.framer)
    game = page.frame_locator("iframe")
    expect(game.get_by_test_id("consent-accept")).to_be_visible(timeout=30_000)
    with page.expect_response(is_round_start) as started:
        game.get_by_test_id("consent-accept").click()
    assert started.value.status == 201, started.value.text()  # the cookie came along: no 401
    round_id = started.value.json()["round_id"]
    expect(game.locator("#game-screen[data-state='playing']")).to_be_visible()
    box = game.get_by_test_id("game-canvas").bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(centre_x, centre_y)
    page.mouse.down()
    for step in range(1, 120):
        if step % 20 == 0 and game.get_by_test_id("round-result").is_visible():
            break
        radius = step * min(box["width"], box["height"]) / 260
        angle = step / 4
        page.mouse.move(centre_x + radius * math.cos(angle), centre_y + radius * math.sin(angle))
        page.wait_for_timeout(30)
    page.mouse.up()
    expect(game.get_by_test_id("round-result")).to_be_visible(timeout=15_000)
    context.close()
    assert not violations, violations
    engine = sa.create_engine(f"sqlite:///{origins.database}")
    try:
        with engine.connect() as connection:
            players = connection.execute(sa.select(Player.id, Player.source)).all()
            outcomes = connection.execute(sa.select(Round.outcome)).scalars().all()
        # The strokes' socket's handshake carried the partitioned cookie in the frame too.
        assert [socket.url for socket in strokes.sockets] == [socket_url(origins.game)]
        assert_sent_over_the_socket(strokes, engine, round_id)
    finally:
        engine.dispose()
    assert [source for _id, source in players] == ["mturk"]  # one player, no orphans
    # One round played to its end; the game may have made the next one while the result showed.
    assert len([o for o in outcomes if o is not None]) == 1 and outcomes.count(None) <= 1


def test_a_page_the_csp_does_not_name_cannot_frame_the_game(
    trusting_browser: Browser, origins: Origins
) -> None:
    context = trusting_browser.new_context()
    page = context.new_page()
    violations = csp_messages(page)
    page.goto(origins.stranger)
    # Until the browser has reported the refusal and the frame has left its first, empty URL (a
    # fixed wait could be too short on a loaded machine).
    wait_until(
        page,
        lambda: (
            any("frame-ancestors" in message for message in violations)
            and len(page.frames) > 1
            and page.frames[1].url != ""
        ),
        "the browser reported no frame-ancestors refusal",
    )
    child = page.frames[1]
    assert child.url.startswith("chrome-error://") or child.url == "about:blank", child.url
    assert page.frame_locator("iframe").get_by_test_id("consent-accept").count() == 0
    assert any("frame-ancestors" in message for message in violations), violations
    context.close()
