"""A small lab without a proxy: `clickme serve --ssl-certfile --ssl-keyfile` serves HTTPS itself
(uvicorn's TLS), and refuses a key without its certificate."""

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from clickme.cli import _tls_options, app
from clickme.core.config import get_settings
from tests.certificates import make_certificate
from tests.live_server import answers, clickme_command, free_port, prepared_env, wait_until_up


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
        healthz = f"https://127.0.0.1:{port}/healthz"
        wait_until_up(answers(healthz, verify=context), "clickme serve", process, log)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        process.terminate()
        process.wait(timeout=20)


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
