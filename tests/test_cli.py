"""The `clickme` command line: help everywhere, migrations, and clear refusals before serving."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clickme.cli import app
from clickme.core.config import get_settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CLICKME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLICKME_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["demo"],
        ["db"],
        ["db", "upgrade"],
        ["images"],
        ["images", "import"],
        ["players"],
        ["players", "flag"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_serve_refuses_an_unmigrated_database(data_dir: Path) -> None:
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code != 0
    assert "clickme db upgrade" in result.output


def test_serve_refuses_an_empty_image_set(data_dir: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (data_dir / "clickme.db").exists()
    result = runner.invoke(app, ["serve", "--port", "1", "--campaign-image-set", "nothing"])
    assert result.exit_code != 0
    assert "has no images" in result.output
