"""Browser fixtures: the real `clickme serve` (free port, one ImageNet photo) and Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_PATH = Path(os.environ.get("CLICKME_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS_DIR = Path(os.environ.get("CLICKME_SHOTS_DIR", "/tmp/clickme-shots"))
TEST_IMAGE = "n01443537_goldfish.JPEG"
TEST_IMAGE_SET = "test"
SERVER_START_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    data_dir: Path
    engine: sa.Engine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clickme(*args: str) -> list[str]:
    return [sys.executable, "-m", "clickme.cli", *args]


def _server_env(data_dir: Path) -> dict[str, str]:
    """The test's environment pointed at a fresh data dir and its default SQLite database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKME_")}
    env["CLICKME_DATA_DIR"] = str(data_dir)
    return env


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"clickme serve exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"clickme serve not up after {SERVER_START_TIMEOUT_S}s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def live_server(
    imagenet_sample: Path, models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`clickme serve` on a migrated SQLite data dir whose default campaign plays one goldfish."""
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    data_dir.mkdir()
    shared_models = models_cache_dir / "models"
    shared_models.mkdir(exist_ok=True)
    (data_dir / "models").symlink_to(shared_models, target_is_directory=True)
    photos = root / "photos"
    photos.mkdir()
    shutil.copy(imagenet_sample / TEST_IMAGE, photos / TEST_IMAGE)
    env = _server_env(data_dir)
    subprocess.run(_clickme("db", "upgrade"), env=env, check=True, capture_output=True)
    subprocess.run(
        _clickme("images", "import", str(photos), "--set", TEST_IMAGE_SET),
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            _clickme(
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--campaign-image-set",
                TEST_IMAGE_SET,
            ),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    engine = sa.create_engine(f"sqlite:///{data_dir / 'clickme.db'}")
    try:
        _wait_until_healthy(base_url, server, log_path)
        yield LiveServer(base_url, data_dir, engine)
    finally:
        engine.dispose()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (per module: Playwright's sync API holds
    an event loop on the main thread while it runs, which asyncio tests must not meet)."""
    if not CHROMIUM_PATH.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium missing in CI: {CHROMIUM_PATH}")
        pytest.skip(f"Chromium not found: {CHROMIUM_PATH}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    """Where the tests leave screenshots of the layouts to look at."""
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    return SHOTS_DIR
