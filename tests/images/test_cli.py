"""`clickme images`: import, import-demo and list against a real migrated database."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from clickme.campaigns.service import ensure_default_campaign, reveal_rule
from clickme.core.config import get_settings
from clickme.core.db import Database
from clickme.images import service
from clickme.images.cli import app
from clickme.images.labels import class_name, index_of_synset
from clickme.scoring import reveal
from clickme.scoring.registry import get_model_spec
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.service import ensure_model_row

runner = CliRunner()


@pytest.fixture
def configured(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point the CLI's settings at the test database and a fresh data dir."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CLICKME_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CLICKME_DATABASE_URL", database.url)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture
def sample_folder(demo_photos: list[Path], tmp_path: Path) -> Path:
    folder = tmp_path / "my-photos"
    folder.mkdir()
    for source in demo_photos[:3]:
        shutil.copyfile(source, folder / source.name)
    return folder


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("import", "import-demo", "list", "prepare"):
        assert command in result.output


def test_import_then_list(configured: Path, sample_folder: Path) -> None:
    (sample_folder / "notes.txt").write_text("taken on holiday")

    result = runner.invoke(app, ["import", str(sample_folder)])
    assert result.exit_code == 0, result.output
    assert (
        "image set 'my-photos': 3 imported, 0 already there, 0 problems, 1 skipped (not photos)"
        in result.stdout
    )
    assert "skipped, not photos: notes.txt" in result.stdout
    assert "notes.txt" not in result.stderr  # not a problem
    assert len(list((configured / "images").iterdir())) == 3

    again = runner.invoke(app, ["import", str(sample_folder)])
    assert again.exit_code == 0, again.output
    assert "0 imported, 3 already there" in again.stdout

    sets = runner.invoke(app, ["list"])
    assert sets.exit_code == 0, sets.output
    assert sets.stdout.splitlines() == ["my-photos\t3 images"]

    images = runner.invoke(app, ["list", "--set", "my-photos"])
    assert images.exit_code == 0, images.output
    lines = images.stdout.splitlines()
    assert len(lines) == 3
    first = sorted(sample_folder.glob("n*.JPEG"))[0]
    index = index_of_synset(first.name[:9])
    assert index is not None
    with PILImage.open(first) as photo:
        size = f"{photo.width}x{photo.height}"
    assert lines[0].split("\t")[1:] == [f"{index} {class_name(index)}", size]


def test_import_into_a_named_set_and_nothing_importable_fails(
    configured: Path, sample_folder: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["import", str(sample_folder), "--set", "chosen"])
    assert result.exit_code == 0, result.output
    assert "image set 'chosen': 3 imported" in result.stdout

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "n01440764_x.JPEG").write_text("not a photo")
    failed = runner.invoke(app, ["import", str(broken)])
    assert failed.exit_code == 1
    assert "n01440764_x.JPEG: not an image" in failed.stderr


def test_import_demo_and_unknown_set(configured: Path) -> None:
    result = runner.invoke(app, ["import-demo"])
    assert result.exit_code == 0, result.output
    assert "image set 'demo': 5 imported" in result.stdout

    listed = runner.invoke(app, ["list", "--set", "demo"])
    assert listed.exit_code == 0, listed.output
    assert "\t967 espresso\t600x400" in listed.stdout

    missing = runner.invoke(app, ["list", "--set", "absent"])
    assert missing.exit_code == 1
    assert "no image set 'absent'" in missing.stderr


def test_prepare_keeps_a_campaign_s_photos_ready_for_revealing_and_display(
    configured: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["import-demo"]).exit_code == 0
    with database.session() as session:
        model = ensure_model_row(session, get_model_spec("efficientnet-lite0"))
        image_set = service.find_image_set(session, "demo")
        campaign = ensure_default_campaign(session, image_set, model)
        photos = [configured / "images" / i.file_name for i in service.list_images(session, "demo")]
        rule = reveal_rule(campaign)

    result = runner.invoke(app, ["prepare", "--campaign", campaign.slug])
    assert result.exit_code == 0, result.output
    assert f"5 photos of campaign {campaign.slug!r} prepared" in result.stdout
    assert len(list((configured / "prepared").glob("*.npz"))) == 5
    assert len(list((configured / "display").glob("*.jpg"))) == 5  # the photos players get

    def no_decoding(_path: Path) -> None:
        raise AssertionError("decoded at play time")

    monkeypatch.setattr(reveal, "load_rgb", no_decoding)
    cache = PreparedImageCache(8, configured / "prepared")
    assert all(cache.get(photo, rule).pixels.shape == (224, 224, 3) for photo in photos)

    missing = runner.invoke(app, ["prepare", "--campaign", "nope"])
    assert missing.exit_code == 1 and "no campaign 'nope'" in missing.stderr
