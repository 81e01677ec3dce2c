"""The `clickme` command line: help everywhere, migrations, and clear refusals before serving."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clickme import cli
from clickme.campaigns.service import DEFAULT_CAMPAIGN_SLUG
from clickme.cli import app, prepare_default_campaign
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


def test_serve_refuses_when_nothing_is_imported(data_dir: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code != 0
    assert "no image set has images" in result.output
    assert "clickme images import DIR" in result.output


def default_campaign_set(data_dir: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{data_dir / 'clickme.db'}")
    with engine.connect() as connection:
        name = connection.execute(
            sa.text(
                "SELECT image_sets.name FROM campaigns JOIN image_sets"
                " ON image_sets.id = campaigns.image_set_id WHERE campaigns.slug = :slug"
            ),
            {"slug": DEFAULT_CAMPAIGN_SLUG},
        ).scalar_one()
    engine.dispose()
    return name


def test_serving_after_an_import_plays_what_was_imported(
    data_dir: Path, demo_photos: list[Path], tmp_path: Path
) -> None:
    """`clickme images import DIR` then `clickme serve`: the default campaign plays DIR's set."""
    folder = tmp_path / "my-photos"
    folder.mkdir()
    for photo in demo_photos[:2]:
        shutil.copyfile(photo, folder / photo.name)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["images", "import-demo"]).exit_code == 0
    prepare_default_campaign(None)
    assert default_campaign_set(data_dir) == "demo"

    assert runner.invoke(app, ["images", "import", str(folder)]).exit_code == 0
    prepare_default_campaign(None)
    assert default_campaign_set(data_dir) == "my-photos"

    prepare_default_campaign("demo")  # told otherwise
    assert default_campaign_set(data_dir) == "demo"


def test_the_demo_prepares_its_photos_before_serving(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a deployment does: no photo is prepared on a player's first stroke."""
    served: list[tuple[str, int]] = []

    def run_server(host: str, port: int, tls: dict) -> None:
        served.append((host, port))

    monkeypatch.setattr(cli, "_run_server", run_server)
    result = runner.invoke(app, ["demo", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", 8123)]
    assert default_campaign_set(data_dir) == "demo"
    assert result.output.count("the default campaign plays") == 1
    settings = get_settings()
    photos = list(settings.images_dir.rglob("*.*"))
    assert len(photos) >= 5
    assert len([p for p in settings.prepared_dir.rglob("*") if p.is_file()]) >= len(photos)
    assert len([p for p in settings.display_dir.rglob("*") if p.is_file()]) >= len(photos)
