"""A real `clickme serve` subprocess on a free port, over a fresh SQLite data dir."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

SERVER_START_TIMEOUT_S = 240.0
TEST_IMAGE = "n07920052_espresso.JPEG"  # scikit-image's coffee, among the demo photos
TEST_IMAGE_SET = "test"


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    data_dir: Path
    engine: sa.Engine

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """`clickme <args>` on the server's data dir and database; the test fails if it does."""
        result = subprocess.run(
            clickme_command(*args),
            env=_server_env(self.data_dir),
            input=stdin,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"clickme {' '.join(args)}: {result.stderr}"
        return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clickme_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "clickme.cli", *args]


def _server_env(data_dir: Path) -> dict[str, str]:
    """The test's environment pointed at a fresh data dir and its default SQLite database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKME_")}
    env["CLICKME_DATA_DIR"] = str(data_dir)
    return env


def answers(url: str, **options: Any) -> Callable[[], bool]:
    """Whether a GET of the URL succeeds (httpx options: verify, ...)."""
    return lambda: httpx.get(url, timeout=1.0, **options).is_success


def wait_until_up(
    check: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> None:
    """Until check() holds (refused connections count as not yet); the test fails, with the
    process's log, if the process exits or time runs out first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} not up after {timeout_s}s:\n{log_path.read_text()}")


def prepared_env(
    root: Path, models_cache_dir: Path, import_args: list[str], **overrides: str
) -> dict[str, str]:
    """The environment of a server on a new data dir under root (the session's model cache,
    CLICKME_* overrides), its database migrated and `clickme images <import_args>` run."""
    data_dir = root / "data"
    data_dir.mkdir()
    shared_models = models_cache_dir / "models"
    shared_models.mkdir(exist_ok=True)
    (data_dir / "models").symlink_to(shared_models, target_is_directory=True)
    env = _server_env(data_dir) | overrides
    commands = [["db", "upgrade"], ["images", *import_args]]
    subprocess.run(
        [sys.executable, "-c", _RUN_COMMANDS, json.dumps(commands)],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


# `clickme <args>` for each args of the JSON list, in one Python process (one start-up of the
# interpreter and the CLI instead of one each); exits with the first failing command's status.
_RUN_COMMANDS = """
import json, sys
from clickme.cli import app
for args in json.loads(sys.argv[1]):
    status = app(args, standalone_mode=False)
    if status:
        sys.exit(status)
"""


@contextmanager
def running_server(
    root: Path, models_cache_dir: Path, import_args: list[str], image_set: str
) -> Iterator[LiveServer]:
    """Migrate, import (`clickme images <import_args>`), serve; stop the server afterwards."""
    env = prepared_env(root, models_cache_dir, import_args)
    data_dir = root / "data"
    engine = sa.create_engine(f"sqlite:///{data_dir / 'clickme.db'}")
    try:
        with serving(env, root / "server.log", image_set) as base_url:
            yield LiveServer(base_url, data_dir, engine)
    finally:
        engine.dispose()


def start_server(
    env: dict[str, str], log_path: Path, image_set: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`clickme serve` with this environment on a free port, once healthy: its process and URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = clickme_command(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--campaign-image-set", image_set
    )
    with log_path.open("ab") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(answers(f"{base_url}/healthz"), "clickme serve", server, log_path)
    except BaseException:
        server.kill()
        server.wait()
        raise
    return server, base_url


@contextmanager
def serving(env: dict[str, str], log_path: Path, image_set: str) -> Iterator[str]:
    """`clickme serve` with this environment on a free port, up (its base URL) until the end."""
    server, base_url = start_server(env, log_path, image_set)
    try:
        yield base_url
    finally:
        stop_process(server)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Ask the process to stop (SIGTERM: a clean shutdown); kill it if it has not in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def served_photo_folder(root: Path, demo_photos: list[Path]) -> Path:
    """A folder under root holding the one photo the live servers play (TEST_IMAGE)."""
    photos = root / "photos"
    photos.mkdir()
    (source,) = (photo for photo in demo_photos if photo.name == TEST_IMAGE)
    shutil.copy(source, photos / TEST_IMAGE)
    return photos


@pytest.fixture(scope="session")
def live_server(
    demo_photos: list[Path], models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`clickme serve` whose default campaign plays one real photo (an espresso)."""
    root = tmp_path_factory.mktemp("live")
    photos = served_photo_folder(root, demo_photos)
    import_args = ["import", str(photos), "--set", TEST_IMAGE_SET]
    with running_server(root, models_cache_dir, import_args, TEST_IMAGE_SET) as server:
        yield server


@pytest.fixture(scope="module")
def demo_server(
    models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`clickme serve` on the five demo photos."""
    root = tmp_path_factory.mktemp("demo")
    with running_server(root, models_cache_dir, ["import-demo"], "demo") as server:
        yield server
