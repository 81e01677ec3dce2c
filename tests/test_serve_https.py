"""A small lab without a proxy: `clickme serve --ssl-certfile --ssl-keyfile` serves HTTPS itself
(uvicorn's TLS), and refuses a key without its certificate."""

import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from clickme.cli import _tls_options, app
from clickme.core.config import get_settings
from tests.certificates import make_certificate
from tests.live_server import SERVER_START_TIMEOUT_S, clickme_command, free_port, prepared_env


def test_a_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not used")
    result = CliRunner().invoke(app, ["serve", "--ssl-keyfile", str(key)])
    assert result.exit_code != 0
    assert "certificate" in result.output


def test_clickme_serve_speaks_https_with_a_certificate(
    models_cache_dir: Path, tmp_path: Path
) -> None:
    """A small lab without a proxy: `clickme serve --ssl-certfile --ssl-keyfile`."""
    certificate = make_certificate(tmp_path, "localhost", "127.0.0.1")
    env = prepared_env(tmp_path, models_cache_dir, ["import-demo"])
    port = free_port()
    command = clickme_command(
        "serve", "--port", str(port), "--ssl-certfile", str(certificate.cert_file),
        "--ssl-keyfile", str(certificate.key_file),
    )  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        context = ssl.create_default_context(cafile=str(certificate.ca_file))
        assert wait_for_https(f"https://127.0.0.1:{port}/healthz", context, process), (
            log.read_text()
        )
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_for_https(url: str, context: ssl.SSLContext, process: subprocess.Popen) -> bool:
    """Whether the URL answers 200 over verified HTTPS before the process exits or time is up."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return httpx.get(url, verify=context).status_code == 200
        except httpx.ConnectError:
            time.sleep(0.25)
    return False


def test_the_settings_give_the_certificate_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = make_certificate(tmp_path, "localhost")
    monkeypatch.setenv("CLICKME_SSL_CERTFILE", str(certificate.cert_file))
    monkeypatch.setenv("CLICKME_SSL_KEYFILE", str(certificate.key_file))
    get_settings.cache_clear()
    try:
        assert _tls_options(None, None) == {
            "ssl_certfile": str(certificate.cert_file),
            "ssl_keyfile": str(certificate.key_file),
        }
        assert _tls_options(tmp_path / "cert.pem", None)["ssl_certfile"] == str(
            tmp_path / "cert.pem"
        )
    finally:
        get_settings.cache_clear()
