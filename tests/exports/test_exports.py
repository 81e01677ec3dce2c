"""Research exports on both databases: every format, determinism, exclusions, filters, errors."""

import csv
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image as PilImage
from sqlalchemy import select
from typer.testing import CliRunner

from clickme.campaigns.models import Campaign
from clickme.cli import app
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.data import ClickMeDataset
from clickme.exports import writers
from clickme.exports.manifest import file_sha256, read_manifest
from clickme.exports.service import ExportError, ExportRequest, player_pseudonym, run_export
from clickme.maps.aggregate import MapSettings, human_map, to_eval
from clickme.maps.valid import valid_rounds
from clickme.players.service import exclude_player
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds

ALL_FORMATS = ("npz", "hdf5", "png", "csv", "parquet", "webdataset")


@dataclass(frozen=True)
class Study:
    database: Database
    settings: Settings
    image_ids: list[int]
    mouse_players: list[int]
    touch_player: int
    excluded_player: int


@pytest.fixture
def study(database: Database, settings: Settings) -> Study:
    """4 photos (classes 0, 1, 2, 0); 3 mouse players on all, a touch player on the first two,
    an excluded player on all."""
    with database.session() as session:
        image_set, images = add_photos(session, settings.images_dir, 4)
        campaign = add_campaign(session, image_set)
        mouse, (touch,), (excluded,) = (
            add_players(session, 3), add_players(session, 1), add_players(session, 1)
        )  # fmt: skip
        add_rounds(session, campaign, images, mouse, seed=1)
        add_rounds(session, campaign, images[:2], [touch], seed=2, pointer_type="touch")
        add_rounds(session, campaign, images, [excluded], seed=3)
        exclude_player(session, excluded, "careless", None)
        image_ids = [image.id for image in images]
    return Study(database, settings, image_ids, mouse, touch, excluded)


def export(study: Study, out: Path, formats=ALL_FORMATS, **filters) -> dict:
    options = {"n_splits": 5, "min_rounds": 2, **filters}  # the study has 2 to 4 rounds an image
    request = ExportRequest(campaign="study", formats=tuple(formats), **options)
    with study.database.session() as session:
        return run_export(
            session, request, out,
            secret=study.settings.resolved_secret_key(), images_dir=study.settings.images_dir,
        )  # fmt: skip


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def csv_rows(out: Path) -> list[dict]:
    with (out / "rounds.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_every_format_is_written_and_readable(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "export"
    manifest = export(study, out, shard_size=3)
    first = f"{study.image_ids[0]:09d}"

    with np.load(out / "maps.npz") as npz:
        assert npz[f"{first}/map"].shape == (240, 320)
        assert npz[f"{first}/map_224"].shape == (224, 224)
        assert npz[f"{first}/map"].max() == pytest.approx(1.0)
        assert int(npz[f"{first}/n_players"]) == 4  # 3 mouse + 1 touch, not the excluded one
        assert int(npz[f"{first}/class_index"]) == 0
        assert str(npz[f"{first}/label"]) == "tench"
        assert np.isfinite(float(npz[f"{first}/split_half"]))
        assert len(npz.files) == 4 * 6

    with h5py.File(out / "maps.h5") as h5:
        assert list(h5) == [f"{image_id:09d}" for image_id in study.image_ids]
        assert h5[first]["map"].shape == (240, 320)
        assert h5[first].attrs["n_players"] == 4

    maps = sorted((out / "png" / "maps").iterdir())
    assert len(maps) == 4 and len(list((out / "png" / "overlays").iterdir())) == 4
    with PilImage.open(maps[0]) as grey:
        assert grey.mode.startswith("I") and grey.size == (320, 240)

    assert len(csv_rows(out)) == 3 * 4 + 2
    table = pq.read_table(out / "rounds.parquet")
    assert table.num_rows == 3 * 4 + 2
    assert len(table.column("x")[0]) == len(table.column("t")[0]) == 40

    shards = sorted((out / "webdataset").iterdir())
    assert [shard.name for shard in shards] == ["clickme-000000.tar", "clickme-000001.tar"]
    with tarfile.open(shards[0]) as tar:
        assert tar.getnames()[:3] == [f"{first}.jpg", f"{first}.map.png", f"{first}.json"]

    assert manifest["counts"] == {
        "images": 4, "valid_rounds": 14, "exported_rounds": 14, "players": 4
    }  # fmt: skip
    assert manifest["model_versions"] == ["test-1"]
    assert manifest["campaign"]["versions"] == [1]
    assert read_manifest(out) == manifest
    on_disk = {name for name in files_of(out) if name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert file_sha256(out / name) == digest


def test_npz_and_hdf5_hold_the_human_maps_exactly(study: Study, tmp_path: Path) -> None:
    """Their maps are compressed on the worker threads and written as ready-made bytes."""
    out = tmp_path / "export"
    export(study, out, formats=("npz", "hdf5"))
    with study.database.session() as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.slug == "study"))
        images = list(valid_rounds(session, campaign_id, MapSettings(min_rounds=2)))
    with np.load(out / "maps.npz") as npz, h5py.File(out / "maps.h5") as h5:
        for image in images:
            native = human_map(image.rounds_points, image.width, image.height)
            key = f"{image.image_id:09d}"
            for name, values in {"map": native, "map_224": to_eval(native)}.items():
                np.testing.assert_array_equal(npz[f"{key}/{name}"], values)
                np.testing.assert_array_equal(h5[key][name][()], values)
    with zipfile.ZipFile(out / "maps.npz") as archive:
        assert archive.testzip() is None


def test_the_dataset_reads_the_shards_with_the_eval_transform(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(study, out, formats=("webdataset",), shard_size=3)
    dataset = ClickMeDataset(out)
    assert len(dataset) == 4
    image, heat, label, has_map = dataset[0]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert heat.shape == (1, 224, 224) and 0.0 <= float(heat.min()) <= float(heat.max()) <= 1.0
    assert float(heat.max()) > 0.5
    assert (label, has_map) == (0, True)
    train, val = ClickMeDataset(out, "train"), ClickMeDataset(out, "val")
    assert sorted(train.image_ids + val.image_ids) == study.image_ids
    with pytest.raises(FileNotFoundError):
        ClickMeDataset(tmp_path)


def test_a_second_export_has_the_same_bytes(study: Study, tmp_path: Path) -> None:
    first = export(study, tmp_path / "a")
    export(study, tmp_path / "b", formats=("csv",))
    second = export(study, tmp_path / "b")  # over an earlier export: its files are replaced
    files_a, files_b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    files_a.pop("manifest.json"), files_b.pop("manifest.json")
    assert files_a == files_b
    first.pop("created_at"), second.pop("created_at")
    assert first == second


def test_excluded_players_are_left_out_and_pseudonymised(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(study, out, formats=("csv",))
    secret = study.settings.resolved_secret_key()
    players = {row["player"] for row in csv_rows(out)}
    expected = {player_pseudonym(secret, p) for p in [*study.mouse_players, study.touch_player]}
    assert players == expected
    assert player_pseudonym(secret, study.excluded_player) not in players
    raw_ids = {str(p) for p in [*study.mouse_players, study.touch_player]}
    assert not players & raw_ids


def test_filters(study: Study, tmp_path: Path) -> None:
    by_class = export(study, tmp_path / "class", formats=("npz",), classes=(1,))
    assert by_class["counts"]["images"] == 1

    touch = export(study, tmp_path / "touch", formats=("csv", "npz"), pointer_type="touch",
                   min_rounds=1)  # fmt: skip
    assert touch["counts"]["images"] == 2 and touch["counts"]["players"] == 1
    assert {row["pointer_type"] for row in csv_rows(tmp_path / "touch")} == {"touch"}
    with np.load(tmp_path / "touch" / "maps.npz") as npz:
        assert np.isnan(float(npz[f"{study.image_ids[0]:09d}/split_half"]))

    four_rounds = export(study, tmp_path / "four", formats=("npz",), min_rounds=4)
    assert four_rounds["counts"]["images"] == 2
    reliable = export(study, tmp_path / "reliable", formats=("npz",), min_reliability=-1.0)
    assert reliable["counts"]["images"] == 4
    unsplit = export(study, tmp_path / "unsplit", formats=("npz",), n_splits=0)
    assert unsplit["counts"]["images"] == 4
    with np.load(tmp_path / "unsplit" / "maps.npz") as npz:
        assert np.isnan(float(npz[f"{study.image_ids[0]:09d}/split_half"]))
    with pytest.raises(ExportError, match="matches the filters"):
        export(study, tmp_path / "none", formats=("npz",), min_reliability=1.01)
    with pytest.raises(ExportError, match="matches the filters"):
        export(study, tmp_path / "none", formats=("npz",), min_rounds=5)
    assert not list((tmp_path / "none").iterdir())


def test_clear_errors(study: Study, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no campaign 'nope'"):
        run_export_of(study, "nope", tmp_path / "x")
    with study.database.session() as session:
        image_set, _ = add_photos(session, study.settings.images_dir, 1, seed=9)
        add_campaign(session, image_set, slug="empty")
    with pytest.raises(ExportError, match="no finished rounds"):
        run_export_of(study, "empty", tmp_path / "x")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot write to"):
        export(study, blocker / "export")
    with pytest.raises(ExportError, match="unknown format"):
        export(study, tmp_path / "x", formats=("zip",))
    with pytest.raises(ExportError, match="needs split-half values"):
        export(study, tmp_path / "x", n_splits=0, min_reliability=0.5)
    with pytest.raises(ExportError, match="pointer type"):
        export(study, tmp_path / "x", pointer_type="stylus")


def run_export_of(study: Study, slug: str, out: Path) -> dict:
    with study.database.session() as session:
        return run_export(
            session, ExportRequest(campaign=slug, formats=("npz",)), out,
            secret="s", images_dir=study.settings.images_dir,
        )  # fmt: skip


def test_a_failed_export_leaves_nothing_that_looks_complete(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "export"
    seen: list[list[str]] = []
    real_add = writers.NpzWriter.add

    def failing_add(self, item, encoded) -> None:
        seen.append(sorted(path.name for path in out.iterdir()))
        if len(seen) == 3:
            raise OSError(28, "No space left on device")
        real_add(self, item, encoded)

    monkeypatch.setattr(writers.NpzWriter, "add", failing_add)
    with pytest.raises(ExportError, match="No space left on device"):
        export(study, out)
    # While it ran, only the hidden staging folder was there; afterwards nothing at all.
    assert all(len(names) == 1 and names[0].startswith(".export-staging-") for names in seen)
    assert list(out.iterdir()) == []


def test_the_cli_exports_with_a_progress_bar(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("clickme.core.config.get_settings", lambda: study.settings)
    out = tmp_path / "export"
    runner = CliRunner()
    args = [
        "export",
        "--campaign",
        "study",
        "--out",
        str(out),
        "--splits",
        "3",
        "--min-rounds",
        "2",
    ]
    result = runner.invoke(app, [*args, "--format", "npz", "--format", "csv", "--classes", "0,2"])
    assert result.exit_code == 0, result.output
    assert "exported 3 images" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "maps.npz", "rounds.csv"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filters"]["classes"] == [0, 2]
    with zipfile.ZipFile(out / "maps.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {writers.ZIP_EPOCH}

    failed = runner.invoke(app, ["export", "--campaign", "nope", "--out", str(out), "--format",
                                 "npz"])  # fmt: skip
    assert failed.exit_code == 1
    assert "no campaign 'nope'" in failed.output


def test_the_image_set_filter_names_the_campaign_s_set(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = export(study, tmp_path / "same", formats=("npz",), image_set="synthetic-0")
    assert kept["counts"]["images"] == 4
    assert kept["filters"]["image_set"] == "synthetic-0"
    assert export(study, tmp_path / "any", formats=("npz",))["filters"]["image_set"] is None
    other = "campaign 'study' plays image set 'synthetic-0', not 'other'"
    with pytest.raises(ExportError, match=other):
        export(study, tmp_path / "other", formats=("npz",), image_set="other")

    monkeypatch.setattr("clickme.core.config.get_settings", lambda: study.settings)
    args = ["export", "--campaign", "study", "--out", str(tmp_path / "cli"), "--format", "npz"]
    result = CliRunner().invoke(app, [*args, "--image-set", "other"])
    assert result.exit_code == 1 and other in result.output
