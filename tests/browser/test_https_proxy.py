"""Production as docker-compose deploys it, on this machine: the real proxy (Debian's Caddy with
deploy/Caddyfile, a certificate made by the test with trustme) in front of two `clickme serve`
processes (PostgreSQL, Redis), played in Chromium for the name clickme.test. Also: plain HTTP by
a host name is explained, a refused cookie is explained, `clickme serve` speaks HTTPS itself."""

import os
import shutil
import ssl
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from clickme.players.identity import hash_ip
from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_PATH, _watch_csp
from tests.browser.test_play_round import (
    DESKTOP,
    PHONE,
    RESULT_TEXT,
    accept_consent_and_start,
    assert_sent_over_the_socket,
    paint_with_mouse,
    paint_with_touch,
    socket_url,
    stored_round,
    watch_strokes,
    zigzag,
)
from tests.certificates import Certificate, make_certificate
from tests.conftest import (
    REDIS_TEST_URL,
    REPO_ROOT,
    _create_postgres_database,
    _drop_postgres_database,
)
from tests.live_server import (
    TEST_IMAGE_SET,
    LiveServer,
    answers,
    free_port,
    prepared_env,
    served_photo_folder,
    serving,
    stop_process,
    wait_until_up,
)

pytestmark = pytest.mark.browser

DOMAIN = "clickme.test"
CADDYFILE = REPO_ROOT / "deploy" / "Caddyfile"
SECRET = "k3Jd9xP2mQ7vL5tR8wZ1nB4cF6hY0aE2gU9iO3sK"
PLAYERS_PER_MIN = 5
# Clients of the proxy at addresses of their own (all of 127/8 is this machine's loopback).
CLIENT_A = "127.0.0.2"
CLIENT_B = "127.0.0.3"
CADDY_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Deployment:
    https_url: str  # the game as players open it, through the proxy
    http_port: int  # the proxy's plain-HTTP port (redirects)
    https_port: int
    backends: list[str]  # each `clickme serve`'s own URL (inside)
    logs: list[Path]
    engine: sa.Engine
    data_dir: Path
    certificate: Certificate

    def live_server(self) -> LiveServer:
        """The deployment as the round-playing helpers of test_play_round know a server."""
        return LiveServer(self.https_url, self.data_dir, self.engine)

    def client(self, local_address: str) -> httpx.Client:
        """HTTP to the proxy as clickme.test, from this address, trusting the test's CA."""
        context = ssl.create_default_context(cafile=str(self.certificate.ca_file))
        transport = httpx.HTTPTransport(verify=context, local_address=local_address)
        return httpx.Client(transport=transport, timeout=30.0, follow_redirects=False)

    def proxy_request(
        self, client: httpx.Client, method: str, path: str, **kwargs: object
    ) -> httpx.Response:
        """https://clickme.test:PORT/path: sent to 127.0.0.1 with clickme.test's SNI and Host."""
        url = f"https://127.0.0.1:{self.https_port}{path}"
        headers = {"Host": f"{DOMAIN}:{self.https_port}", **kwargs.pop("headers", {})}
        extensions = {"sni_hostname": DOMAIN}
        return client.request(method, url, headers=headers, extensions=extensions, **kwargs)


def require_caddy() -> str:
    caddy = shutil.which("caddy")
    if caddy is None:
        if os.environ.get("CI"):
            pytest.fail("caddy missing in CI (scripts/test.sh installs it)")
        pytest.skip("caddy not installed: apt-get install -y caddy")
    return caddy


@pytest.fixture(scope="module")
def deployment(
    demo_photos: list[Path], models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Caddy with deploy/Caddyfile in front of two production `clickme serve` processes."""
    caddy = require_caddy()
    root = tmp_path_factory.mktemp("https-proxy")
    certificate = make_certificate(root, DOMAIN)
    photos = served_photo_folder(root, demo_photos)
    database = f"clickme_proxy_{os.getpid()}"
    prefix = f"test-proxy-{uuid.uuid4().hex[:12]}"
    overrides = {
        "CLICKME_ENVIRONMENT": "production",
        "CLICKME_SECRET_KEY": SECRET,
        "CLICKME_DATABASE_URL": _create_postgres_database(database),
        "CLICKME_REDIS_URL": REDIS_TEST_URL,
        "CLICKME_REDIS_KEY_PREFIX": prefix,
        "CLICKME_INPROCESS_SCORING": "true",
        "CLICKME_FORWARDED_ALLOW_IPS": "127.0.0.1",  # the proxy's address, as it reaches them
        "CLICKME_RATE_PLAYERS_PER_MIN": str(PLAYERS_PER_MIN),
    }
    import_args = ["import", str(photos), "--set", TEST_IMAGE_SET]
    env = prepared_env(root, models_cache_dir, import_args, **overrides)
    engine = sa.create_engine(overrides["CLICKME_DATABASE_URL"])
    logs = [root / "api-1.log", root / "api-2.log"]
    try:
        with (
            serving(env, logs[0], TEST_IMAGE_SET) as first,
            serving(env, logs[1], TEST_IMAGE_SET) as second,
            running_caddy(caddy, root, certificate, [first, second]) as (http_port, https_port),
        ):
            yield Deployment(
                https_url=f"https://{DOMAIN}:{https_port}",
                http_port=http_port,
                https_port=https_port,
                backends=[first, second],
                logs=logs,
                engine=engine,
                data_dir=root / "data",
                certificate=certificate,
            )
    finally:
        engine.dispose()
        _drop_postgres_database(database)
        with redis.Redis.from_url(REDIS_TEST_URL) as client:
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)


@contextmanager
def running_caddy(
    caddy: str, root: Path, certificate: Certificate, backends: list[str]
) -> Iterator[tuple[int, int]]:
    """`caddy run` with deploy/Caddyfile, parameterised as compose does, on free ports: its
    plain-HTTP and HTTPS ports once it is up."""
    http_port, https_port, admin = free_port(), free_port(), f"127.0.0.1:{free_port()}"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "XDG_DATA_HOME": str(root / "caddy-data"),
        "XDG_CONFIG_HOME": str(root / "caddy-config"),
        "DOMAIN": DOMAIN,
        "TLS": f"{certificate.cert_file} {certificate.key_file}",
        "API_UPSTREAMS": " ".join(url.removeprefix("http://") for url in backends),
        "HTTP_PORT": str(http_port),
        "HTTPS_PORT": str(https_port),
        "CADDY_ADMIN": admin,
    }
    log_path = root / "caddy.log"
    command = [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # What compose's health check asks: Caddy's admin API lists the upstreams.
        upstreams = f"http://{admin}/reverse_proxy/upstreams"
        wait_until_up(answers(upstreams), "caddy", process, log_path, CADDY_START_TIMEOUT_S)
        yield http_port, https_port
    finally:
        stop_process(process)


def test_plain_http_is_redirected_to_https(deployment: Deployment) -> None:
    with deployment.client(CLIENT_A) as client:
        response = client.get(
            f"http://127.0.0.1:{deployment.http_port}/?campaign=x",
            headers={"Host": f"{DOMAIN}:{deployment.http_port}"},
        )
    assert response.status_code in {301, 308}
    location = httpx.URL(response.headers["location"])
    assert (location.scheme, location.host, location.raw_path) == ("https", DOMAIN, b"/?campaign=x")
    assert location.port in {None, deployment.https_port}  # Caddy 2.6 leaves the port out


def test_the_game_is_served_over_https_and_readiness_and_metrics_stay_inside(
    deployment: Deployment,
) -> None:
    with deployment.client(CLIENT_A) as client:
        game = deployment.proxy_request(client, "GET", "/")
        assert game.status_code == 200 and "ClickMe" in game.text
        assert game.headers["strict-transport-security"].startswith("max-age=31536000")
        assert deployment.proxy_request(client, "GET", "/healthz").status_code == 200
        for inside in ("/readyz", "/metrics"):
            assert deployment.proxy_request(client, "GET", inside).status_code == 404, inside
    for backend in deployment.backends:
        assert httpx.get(f"{backend}/metrics").status_code == 200


def players_by_address(deployment: Deployment, address: str) -> int:
    with deployment.engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM players WHERE ip_hash = :hash"),
            {"hash": hash_ip(SECRET, address)},
        ).scalar_one()


def test_the_clients_address_reaches_the_rate_limits_as_the_proxy_saw_it(
    deployment: Deployment,
) -> None:
    """Per client address, whatever X-Forwarded-For the client sends, on both processes."""
    answers = []
    with deployment.client(CLIENT_A) as client:
        for index in range(PLAYERS_PER_MIN + 1):
            spoofed = {"X-Forwarded-For": f"198.51.100.{index}"}
            response = deployment.proxy_request(
                client, "POST", "/api/players", json={"consent": True}, headers=spoofed
            )
            answers.append(response.status_code)
            if response.status_code == 201:
                assert "Secure" in response.headers["set-cookie"]
    assert answers == [201] * PLAYERS_PER_MIN + [429]
    with deployment.client(CLIENT_B) as client:
        response = deployment.proxy_request(client, "POST", "/api/players", json={"consent": True})
        assert response.status_code == 201
    assert players_by_address(deployment, CLIENT_A) == PLAYERS_PER_MIN
    assert players_by_address(deployment, CLIENT_B) == 1
    for log in deployment.logs:  # the proxy shares the requests out between the two processes
        assert "/api/players" in log.read_text(), log


def test_a_process_reached_directly_ignores_forwarded_for(deployment: Deployment) -> None:
    """Only the proxy's address is trusted: another peer's X-Forwarded-For is not believed."""
    before = players_by_address(deployment, CLIENT_B)
    transport = httpx.HTTPTransport(local_address=CLIENT_B)
    with httpx.Client(transport=transport) as client:
        response = client.post(
            f"{deployment.backends[0]}/api/players",
            json={"consent": True},
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
    assert response.status_code == 201
    assert players_by_address(deployment, "203.0.113.50") == 0
    assert players_by_address(deployment, CLIENT_B) == before + 1


@pytest.fixture(scope="module")
def clickme_test_browser(deployment: Deployment) -> Iterator[Browser]:
    """Chromium that resolves clickme.test to this machine and trusts the test's certificate."""
    if not CHROMIUM_PATH.exists():
        pytest.skip(f"Chromium not found: {CHROMIUM_PATH}")
    args = [
        *CHROMIUM_ARGS,
        f"--host-resolver-rules=MAP {DOMAIN} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={deployment.certificate.spki_sha256}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), args=args)
        _watch_csp(browser)
        yield browser
        browser.close()


def play_a_round(page: Page, deployment: Deployment, paint) -> None:
    """Consent and one painted round through the proxy, ended and stored as the page says, its
    batches over the strokes' socket through the proxy."""
    server = deployment.live_server()
    strokes = watch_strokes(page)
    played = accept_consent_and_start(page, server)
    assert page.evaluate("window.isSecureContext")
    paint(page, zigzag(played, [0.3, 0.45, 0.6, 0.75], (0.1, 0.9), 5))
    expect(page.get_by_test_id("round-result")).to_be_visible(timeout=played.time_limit_ms + 15_000)
    assert RESULT_TEXT.match(page.locator("#result-title").inner_text())
    assert stored_round(deployment.engine, played.round_id).outcome in {"correct", "timeout"}
    # Caddy carries the strokes' socket (wss:): the batches went over it, none over HTTP.
    assert [socket.url for socket in strokes.sockets] == [socket_url(deployment.https_url)]
    assert_sent_over_the_socket(strokes, deployment.engine, played.round_id)
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["clickme_player"]["secure"]


@pytest.mark.parametrize(
    ("device", "paint"),
    [(DESKTOP, paint_with_mouse), (PHONE, paint_with_touch)],
    ids=["desktop", "phone"],
)
def test_a_round_through_the_proxy_over_https(
    clickme_test_browser: Browser, deployment: Deployment, device: dict, paint, shots_dir: Path
) -> None:
    context = clickme_test_browser.new_context(**device)
    try:
        page = context.new_page()
        play_a_round(page, deployment, paint)
        name = "phone" if device.get("is_mobile") else "desktop"
        page.screenshot(path=shots_dir / f"https-proxy-{name}.png")
    finally:
        context.close()


def test_plain_http_by_host_name_shows_the_explanation(
    clickme_test_browser: Browser, deployment: Deployment, shots_dir: Path
) -> None:
    """A production process opened at http://clickme.test:PORT/ (no proxy): no stuck page."""
    port = deployment.backends[0].rsplit(":", 1)[1]
    context = clickme_test_browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        response = page.goto(f"http://{DOMAIN}:{port}/")
        assert response is not None and response.status == 403
        expect(page.get_by_role("heading")).to_have_text("This server must be reached over HTTPS")
        expect(page.get_by_role("link")).to_have_text(f"https://{DOMAIN}/")
        page.screenshot(path=shots_dir / "https-required.png")
    finally:
        context.close()


def strip_the_cookie(send: Callable[[Request], httpx.Response]) -> Callable[[Route], None]:
    """A route handler: the consent sent on from Python, answered to the page without its cookie
    (as a browser that refuses it would have it)."""

    def without_cookie(route: Route) -> None:
        answer = send(route.request)
        assert "set-cookie" in answer.headers
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "set-cookie"}
        route.fulfill(status=answer.status_code, headers=headers, body=answer.content)

    return without_cookie


def consent_body(request: Request) -> dict[str, object]:
    return {"content": request.post_data_buffer, "headers": {"Content-Type": "application/json"}}


def test_a_refused_cookie_is_explained(
    clickme_test_browser: Browser, deployment: Deployment, shots_dir: Path
) -> None:
    """The consent answers with the cookie, the browser drops it (here: the test strips it), and
    the page says why and what to do instead of sitting on the consent screen."""

    def through_the_proxy(request: Request) -> httpx.Response:
        with deployment.client("127.0.0.1") as client:
            return deployment.proxy_request(client, "POST", "/api/players", **consent_body(request))

    context = clickme_test_browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        page.route("**/api/players", strip_the_cookie(through_the_proxy))
        page.goto(deployment.https_url)
        page.get_by_test_id("consent-accept").click()
        screen = page.get_by_test_id("cookie-screen")
        expect(screen).to_be_visible()
        expect(screen).to_contain_text("refused the cookie")
        expect(page.locator("#cookie-link")).to_have_attribute("href", f"{deployment.https_url}/")
        expect(page.get_by_test_id("player-name")).to_be_hidden()
        page.screenshot(path=shots_dir / "cookie-refused.png")
    finally:
        context.close()


def test_a_cookie_lost_off_https_points_to_https(
    clickme_test_browser: Browser, live_server: LiveServer
) -> None:
    """A page opened over plain HTTP by a host name (here the demo's, whose cookie the test
    strips as a browser drops a Secure cookie there): the page sends the player to https://."""
    port = live_server.base_url.rsplit(":", 1)[1]

    def to_the_server(request: Request) -> httpx.Response:
        return httpx.post(f"{live_server.base_url}/api/players", **consent_body(request))

    context = clickme_test_browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        page.route("**/api/players", strip_the_cookie(to_the_server))
        page.goto(f"http://{DOMAIN}:{port}/")
        assert not page.evaluate("window.isSecureContext")
        page.get_by_test_id("consent-accept").click()
        screen = page.get_by_test_id("cookie-screen")
        expect(screen).to_contain_text("opened over plain HTTP")
        expect(page.locator("#cookie-link")).to_have_attribute("href", f"https://{DOMAIN}:{port}/")
    finally:
        context.close()
