"""Research exports on both databases: every format, images without a map, long-form points,
names, determinism, exclusions, filters, dry runs and the reasons an export finds nothing."""

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
from clickme.exports.service import (
    ExportError,
    ExportRequest,
    NothingToExport,
    player_pseudonym,
    preview_export,
    run_export,
)
from clickme.game.models import PointBatch, Round
from clickme.game.points import POINT_DTYPE, unpack_points, xy_of
from clickme.game.service import points_by_round
from clickme.images.models import Image
from clickme.insights.flags import raise_flag
from clickme.maps.aggregate import MapSettings, human_map, to_eval
from clickme.players.service import exclude_player
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds, left_edge

ALL_FORMATS = ("npz", "hdf5", "png", "csv", "parquet", "webdataset")
# The study's map rule (not the default, which may change): 4 valid rounds make a map.
MIN_ROUNDS = 4


@dataclass(frozen=True)
class Study:
    database: Database
    settings: Settings
    image_ids: list[int]  # the four 320 x 240 photos, then the wide one
    keys: list[str]
    mouse_players: list[int]
    touch_player: int
    excluded_player: int
    skipping_player: int


@pytest.fixture
def study(database: Database, settings: Settings) -> Study:
    """Four 320 x 240 photos (classes 0, 1, 2, 0) and a 640 x 240 one (class 0). Three mouse
    players paint all five; a touch player the first two (and, with a mouse, the wide one); an
    excluded player the four; a player skips the first. The wide photo is painted at its left
    edge only, far from its centre crop. With 4 valid rounds for a map: photos 1 and 2 have a
    map, 3 and 4 have too few valid rounds, the wide one an empty 224 view."""
    with database.session() as session:
        image_set, images = add_photos(session, settings.images_dir, 4)
        _, (wide,) = add_photos(session, settings.images_dir, 1, (640, 240), 5, image_set)
        campaign = add_campaign(session, image_set)
        mouse, (touch,), (excluded,), (skipping,) = (
            add_players(session, 3), add_players(session, 1), add_players(session, 1),
            add_players(session, 1),
        )  # fmt: skip
        add_rounds(session, campaign, images, mouse, seed=1)
        add_rounds(session, campaign, images[:2], [touch], seed=2, pointer_type="touch")
        add_rounds(session, campaign, [wide], [*mouse, touch], seed=4, painter=left_edge)
        add_rounds(session, campaign, images, [excluded], seed=3)
        add_rounds(session, campaign, images[:1], [skipping], seed=6, outcome="skip")
        exclude_player(session, excluded, "careless", None)
        ids = [image.id for image in [*images, wide]]
    names = ["tench", "goldfish", "great_white_shark", "tench", "tench"]
    synsets = ["n01440764", "n01443537", "n01484850", "n01440764", "n01440764"]
    keys = [f"{i}_{s}_{n}" for i, s, n in zip(ids, synsets, names, strict=True)]
    return Study(database, settings, ids, keys, mouse, touch, excluded, skipping)


def export(study: Study, out: Path, formats=ALL_FORMATS, **filters) -> dict:
    request = ExportRequest(
        campaign="study", formats=tuple(formats), **{"n_splits": 5, "min_rounds": MIN_ROUNDS,
                                                     **filters}
    )  # fmt: skip
    with study.database.session() as session:
        return run_export(
            session, request, out,
            secret=study.settings.resolved_secret_key(), images_dir=study.settings.images_dir,
        )  # fmt: skip


def preview(study: Study, formats=("npz",), **filters) -> dict:
    request = ExportRequest(
        campaign="study", formats=tuple(formats), **{"n_splits": 5, "min_rounds": MIN_ROUNDS,
                                                     **filters}
    )  # fmt: skip
    with study.database.session() as session:
        return preview_export(session, request)


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def csv_rows(out: Path, table: str = "rounds") -> list[dict]:
    with (out / f"{table}.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_every_format_is_written_and_readable(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "export"
    manifest = export(study, out, shard_size=3)
    first, third, wide = study.keys[0], study.keys[2], study.keys[4]

    with np.load(out / "maps.npz") as npz:
        assert npz[f"{first}/map"].shape == (240, 320)
        assert npz[f"{first}/map_224"].shape == (224, 224)
        assert npz[f"{first}/map"].max() == pytest.approx(1.0)
        assert int(npz[f"{first}/valid_rounds"]) == 4  # 3 mouse + 1 touch; no excluded, no skip
        assert int(npz[f"{first}/n_players"]) == 4
        assert int(npz[f"{first}/class_index"]) == 0
        assert (str(npz[f"{first}/class_name"]), str(npz[f"{first}/synset"])) == (
            "tench", "n01440764"
        )  # fmt: skip
        assert str(npz[f"{first}/original_name"]) == "IMG 0-0.JPG"
        assert bool(npz[f"{first}/has_map"]) and str(npz[f"{first}/no_map_reason"]) == ""
        assert np.isfinite(float(npz[f"{first}/split_half"]))
        assert not bool(npz[f"{third}/has_map"]) and f"{third}/map" not in npz.files
        assert str(npz[f"{third}/no_map_reason"]) == "too_few_rounds"
        assert str(npz[f"{wide}/no_map_reason"]) == "empty_view"
        assert len(npz.files) == 5 * 9 + 2 * 2

    with h5py.File(out / "maps.h5") as h5:
        assert list(h5) == study.keys
        assert h5[first]["map"].shape == (240, 320)
        assert h5[first].attrs["n_players"] == 4 and h5[first].attrs["has_map"]
        assert h5[first].attrs["original_name"] == "IMG 0-0.JPG"
        assert h5[first].attrs["synset"] == "n01440764"
        assert list(h5[third]) == [] and h5[third].attrs["no_map_reason"] == "too_few_rounds"

    maps = sorted(path.name for path in (out / "png" / "maps").iterdir())
    assert maps == sorted(f"{key}.png" for key in study.keys[:2])
    assert sorted(path.name for path in (out / "png" / "overlays").iterdir()) == maps
    with PilImage.open(out / "png" / "maps" / f"{first}.png") as grey:
        assert (grey.mode, grey.size) == ("L", (320, 240))
        assert np.asarray(grey).max() == 255
        assert grey.text["original_name"] == "IMG 0-0.JPG" and grey.text["synset"] == "n01440764"
    with PilImage.open(out / "png" / "overlays" / f"{first}.png") as overlay:
        assert (overlay.mode, overlay.size) == ("RGB", (320, 240))

    assert len(csv_rows(out, "images")) == 5
    assert len(csv_rows(out)) == 4 + 1 + 4 + 3 + 3 + 4  # every finished round, the skip too
    assert len(csv_rows(out, "points")) == 19 * 40
    for name, rows in (("images", 5), ("rounds", 19), ("points", 19 * 40)):
        assert pq.read_table(out / f"{name}.parquet").num_rows == rows

    shards = sorted((out / "webdataset").iterdir())
    assert [shard.name for shard in shards] == ["clickme-000000.tar", "clickme-000001.tar"]
    with tarfile.open(shards[0]) as tar:
        assert tar.getnames()[:4] == [
            f"{first}.jpg", f"{first}.map.png", f"{first}.preview.png", f"{first}.json"
        ]  # fmt: skip
        assert f"{third}.map.png" not in tar.getnames()
        assert f"{third}.preview.png" not in tar.getnames()
        meta = json.load(tar.extractfile(f"{third}.json"))
        exact = writers.read_map_png(tar.extractfile(f"{first}.map.png").read())
        with PilImage.open(tar.extractfile(f"{first}.preview.png")) as shown:
            assert (shown.mode, shown.size) == ("L", (320, 240))
            assert shown.text["original_name"] == "IMG 0-0.JPG"
            assert np.abs(np.asarray(shown) / 255 - exact).max() <= 0.5 / 255 + 1e-4
    assert (meta["has_map"], meta["no_map_reason"], meta["class_name"]) == (
        False, "too_few_rounds", "great white shark"
    )  # fmt: skip

    assert manifest["counts"] == {
        "images": 5, "rounds": 19, "valid_rounds": 18, "images_with_map": 2, "map_rounds": 8,
        "exported_rounds": 19, "players": 4,
    }  # fmt: skip
    assert manifest["without_map"] == {
        "too_few_rounds": {"images": 2, "rule": "fewer than 4 valid rounds"},
        "empty_view": {"images": 1, "rule": "no painted pixel in the 224 x 224 evaluation view"},
    }
    assert manifest["filters"]["map_settings"]["min_rounds"] == MIN_ROUNDS
    assert manifest["model_versions"] == ["test-1"]
    assert manifest["campaign"]["versions"] == [1]
    assert read_manifest(out) == manifest
    on_disk = {name for name in files_of(out) if name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert file_sha256(out / name) == digest


def test_every_round_of_every_image_in_long_form(study: Study, tmp_path: Path) -> None:
    """Images without a map keep their rounds; each point is a row with its batch and order."""
    out = tmp_path / "export"
    export(study, out, formats=("csv", "parquet"))
    images = {int(row["image_id"]): row for row in csv_rows(out, "images")}
    assert [images[i]["has_map"] for i in study.image_ids] == ["true"] * 2 + ["false"] * 3
    assert [images[i]["no_map_reason"] for i in study.image_ids] == [
        "", "", "too_few_rounds", "too_few_rounds", "empty_view"
    ]  # fmt: skip
    assert images[study.image_ids[2]]["original_name"] == "IMG 0-2.JPG"
    assert images[study.image_ids[2]]["class_name"] == "great white shark"
    assert images[study.image_ids[0]]["split_half"] != ""
    assert images[study.image_ids[2]]["split_half"] == ""

    rounds = csv_rows(out)
    secret = study.settings.resolved_secret_key()
    skipped = [row for row in rounds if row["outcome"] == "skip"]
    assert len(skipped) == 1 and skipped[0]["valid"] == "false"
    assert skipped[0]["player"] == player_pseudonym(secret, study.skipping_player)
    assert {row["valid"] for row in rounds if row["outcome"] != "skip"} == {"true"}
    assert {int(row["image_id"]) for row in rounds} == set(study.image_ids)
    assert {row["synset"] for row in rounds if int(row["image_id"]) == study.image_ids[1]} == {
        "n01443537"
    }

    points = pq.read_table(out / "points.parquet").to_pylist()
    round_id = int(rounds[0]["round_id"])
    with study.database.session() as session:
        stored = unpack_points(
            list(session.scalars(select(PointBatch.data).where(PointBatch.round_id == round_id)))
        )
        pointer = session.scalar(select(Round.pointer_type).where(Round.id == round_id))
    mine = [row for row in points if row["round_id"] == round_id]
    assert [row["point"] for row in mine] == list(range(40))
    assert {row["seq"] for row in mine} == {1}
    assert {row["pointer_type"] for row in mine} == {pointer}
    np.testing.assert_array_equal([row["x"] for row in mine], stored["x"])
    np.testing.assert_array_equal([row["t"] for row in mine], stored["t"])
    first_csv = [row for row in csv_rows(out, "points") if int(row["round_id"]) == round_id]
    assert [np.float32(row["y"]) for row in first_csv] == list(stored["y"])  # exact round trip


def test_points_keep_their_batch_and_their_order(study: Study, tmp_path: Path) -> None:
    with study.database.session() as session:
        round_id = session.scalar(
            select(Round.id).where(Round.image_id == study.image_ids[2]).order_by(Round.id)
        )
        extra = np.zeros(3, dtype=POINT_DTYPE)
        extra["x"], extra["t"] = [1.5, 2.5, 3.5], [900, 920, 940]
        session.add(PointBatch(round_id=round_id, seq=2, n_points=3, data=extra.tobytes(),
                               received_ms=1000))  # fmt: skip
    out = tmp_path / "export"
    export(study, out, formats=("parquet",))
    points = pq.read_table(out / "points.parquet").to_pylist()
    mine = [row for row in points if row["round_id"] == round_id]
    assert [row["seq"] for row in mine] == [1] * 40 + [2] * 3
    assert [row["point"] for row in mine] == list(range(43))
    assert [row["x"] for row in mine[-3:]] == [1.5, 2.5, 3.5]
    rounds = {row["round_id"]: row for row in pq.read_table(out / "rounds.parquet").to_pylist()}
    assert rounds[round_id]["n_points"] == 43


def test_npz_and_hdf5_hold_the_human_maps_exactly(study: Study, tmp_path: Path) -> None:
    """Their maps are compressed on the worker threads and written as ready-made bytes."""
    out = tmp_path / "export"
    export(study, out, formats=("npz", "hdf5"))
    settings = MapSettings(min_rounds=MIN_ROUNDS)
    with study.database.session() as session:
        image = session.get_one(Image, study.image_ids[0])
        round_ids = session.scalars(
            select(Round.id).where(
                Round.image_id == image.id,
                Round.outcome != "skip",
                Round.player_id != study.excluded_player,
            )
        ).all()
        points = points_by_round(session, list(round_ids))
    rounds_points = [xy_of(points[round_id]) for round_id in round_ids]
    native = human_map(rounds_points, image.width, image.height, settings)
    key = study.keys[0]
    with np.load(out / "maps.npz") as npz, h5py.File(out / "maps.h5") as h5:
        for name, values in {"map": native, "map_224": to_eval(native)}.items():
            np.testing.assert_array_equal(npz[f"{key}/{name}"], values)
            np.testing.assert_array_equal(h5[key][name][()], values)
    with zipfile.ZipFile(out / "maps.npz") as archive:
        assert archive.testzip() is None


def test_the_dataset_reads_the_shards_with_the_eval_transform(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(study, out, formats=("webdataset",), shard_size=3)
    dataset = ClickMeDataset(out)
    assert len(dataset) == 5 and dataset.image_ids == study.image_ids
    image, heat, label, has_map = dataset[0]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert heat.shape == (1, 224, 224) and 0.0 <= float(heat.min()) <= float(heat.max()) <= 1.0
    assert float(heat.max()) > 0.5
    assert (label, has_map) == (0, True)
    assert [dataset[i][3] for i in range(5)] == [True, True, False, False, False]
    assert float(dataset[4][1].max()) == 0.0
    assert dataset.no_map_reasons == {
        study.image_ids[2]: "too_few_rounds",
        study.image_ids[3]: "too_few_rounds",
        study.image_ids[4]: "empty_view",
    }
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
    kept = [*study.mouse_players, study.touch_player, study.skipping_player]
    assert players == {player_pseudonym(secret, p) for p in kept}
    assert player_pseudonym(secret, study.excluded_player) not in players
    assert not players & {str(p) for p in kept}


def test_filters(study: Study, tmp_path: Path) -> None:
    by_class = export(study, tmp_path / "class", formats=("npz",), classes=(1,))
    assert by_class["counts"]["images"] == 1

    touch = export(study, tmp_path / "touch", formats=("csv", "npz"), pointer_type="touch",
                   min_rounds=1)  # fmt: skip
    assert touch["counts"]["images"] == 2 and touch["counts"]["players"] == 1
    assert {row["pointer_type"] for row in csv_rows(tmp_path / "touch")} == {"touch"}
    assert {row["pointer_type"] for row in csv_rows(tmp_path / "touch", "points")} == {"touch"}
    with np.load(tmp_path / "touch" / "maps.npz") as npz:
        assert np.isnan(float(npz[f"{study.keys[0]}/split_half"]))  # one player

    three_rounds = export(study, tmp_path / "three", formats=("npz",), min_rounds=3)
    assert three_rounds["counts"]["images_with_map"] == 4
    reliable = export(study, tmp_path / "reliable", formats=("npz",), min_reliability=-1.0)
    assert reliable["counts"]["images_with_map"] == 2
    unsplit = export(study, tmp_path / "unsplit", formats=("npz",), n_splits=0)
    assert unsplit["counts"]["images_with_map"] == 2
    with np.load(tmp_path / "unsplit" / "maps.npz") as npz:
        assert np.isnan(float(npz[f"{study.keys[0]}/split_half"]))

    strict = export(study, tmp_path / "strict", formats=("csv",), min_reliability=1.01)
    assert strict["counts"]["images_with_map"] == 0
    assert strict["without_map"]["low_reliability"]["images"] == 2


def test_an_export_that_finds_nothing_says_why(study: Study, tmp_path: Path) -> None:
    with pytest.raises(NothingToExport) as error:
        export(study, tmp_path / "none", formats=("csv",), classes=(7,))
    assert str(error.value) == (
        "no image matches the filters: the campaign has 5 images with finished rounds by "
        "players not excluded, 0 of class 7"
    )
    with pytest.raises(NothingToExport) as error:
        export(study, tmp_path / "none", formats=("csv",), campaign_version=1,
               pointer_type="pen")  # fmt: skip
    assert str(error.value).endswith(
        "5 images with finished rounds by players not excluded, 5 of them with rounds of "
        "version 1, 0 with pen rounds"
    )
    with pytest.raises(NothingToExport) as error:
        export(study, tmp_path / "none", formats=("npz", "png"), min_rounds=50)
    assert "no image has a map (" in str(error.value)
    assert str(error.value).endswith("5 images have fewer than 50 valid rounds")
    with pytest.raises(NothingToExport, match="2 images have a split-half reliability below"):
        export(study, tmp_path / "none", formats=("npz",), min_reliability=1.01)
    assert not list((tmp_path / "none").iterdir())
    # Rounds are data even without a map: the round formats still export them.
    rounds_only = export(study, tmp_path / "rounds", formats=("csv",), min_rounds=50)
    assert rounds_only["counts"]["exported_rounds"] == 19


def test_a_dry_run_counts_what_qualifies_and_why_the_rest_does_not(study: Study) -> None:
    result = preview(study)
    assert result["counts"] == {
        "images": 5, "rounds": 19, "valid_rounds": 18, "images_with_map": 2, "map_rounds": 8,
        "exported_rounds": 0, "players": 4,
    }  # fmt: skip
    assert result["summary"] == [
        "5 images match the filters, with 19 finished rounds (18 valid)",
        "2 images qualify for a map, with 8 valid rounds",
        "2 images have fewer than 4 valid rounds",
        "1 image has no painted pixel in the 224 x 224 evaluation view",
    ]
    assert result["problem"] is None and result["map_settings"]["min_rounds"] == MIN_ROUNDS
    assert "a map needs 4 valid rounds" in result["rules"]
    assert preview(study, min_reliability=1.01)["without_map"]["low_reliability"]["images"] == 2
    nothing = preview(study, classes=(7,))
    assert nothing["problem"].endswith("0 of class 7") and nothing["counts"]["images"] == 0
    with pytest.raises(ExportError, match="pointer type"):
        preview(study, pointer_type="stylus")


def test_clear_errors(study: Study, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no campaign 'nope'"):
        run_export_of(study, "nope", tmp_path / "x")
    with study.database.session() as session:
        image_set, _ = add_photos(session, study.settings.images_dir, 1, seed=9)
        add_campaign(session, image_set, slug="empty")
    with pytest.raises(NothingToExport, match="no finished rounds"):
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
    args = ["export", "--campaign", "study", "--out", str(out), "--splits", "3", "--min-rounds",
            "4"]  # fmt: skip
    by_names = ["--classes", "tench,n01484850"]  # classes 0 and 2, by name and by synset
    result = runner.invoke(app, [*args, "--format", "npz", "--format", "csv", *by_names])
    assert result.exit_code == 0, result.output
    assert "exported 4 images (1 with a map), 15 finished rounds" in result.output
    assert "without a map, 2 with fewer than 4 valid rounds" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "images.csv", "manifest.json", "maps.npz", "points.csv", "rounds.csv"
    ]  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filters"]["classes"] == [0, 2]
    with zipfile.ZipFile(out / "maps.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {writers.ZIP_EPOCH}

    failed = runner.invoke(app, ["export", "--campaign", "nope", "--out", str(out), "--format",
                                 "npz"])  # fmt: skip
    assert failed.exit_code == 1
    assert "no campaign 'nope'" in failed.output


def test_the_cli_dry_run_writes_nothing(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("clickme.core.config.get_settings", lambda: study.settings)
    runner = CliRunner()
    args = ["export", "--campaign", "study", "--format", "npz", "--min-rounds", "4", "--dry-run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 images match the filters, with 19 finished rounds (18 valid)" in result.output
    assert "2 images have fewer than 4 valid rounds" in result.output
    assert "1 image has no painted pixel in the 224 x 224 evaluation view" in result.output
    assert not list(tmp_path.glob("export*"))

    nothing = runner.invoke(app, [*args, "--classes", "7"])
    assert nothing.exit_code == 1
    assert "0 of class 7" in nothing.output
    missing_out = runner.invoke(app, args[:-1])
    assert missing_out.exit_code != 0 and "--out" in missing_out.output


def test_the_image_set_filter_names_the_campaign_s_set(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = export(study, tmp_path / "same", formats=("npz",), image_set="synthetic-0")
    assert kept["counts"]["images"] == 5
    assert kept["filters"]["image_set"] == "synthetic-0"
    assert export(study, tmp_path / "any", formats=("npz",))["filters"]["image_set"] is None
    other = "campaign 'study' plays image set 'synthetic-0', not 'other'"
    with pytest.raises(ExportError, match=other):
        export(study, tmp_path / "other", formats=("npz",), image_set="other")

    monkeypatch.setattr("clickme.core.config.get_settings", lambda: study.settings)
    args = ["export", "--campaign", "study", "--out", str(tmp_path / "cli"), "--format", "npz"]
    result = CliRunner().invoke(app, [*args, "--image-set", "other"])
    assert result.exit_code == 1 and other in result.output


def test_flagged_players_are_left_out_on_request_and_the_manifest_says_so(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = study.mouse_players[0]
    with study.database.session() as session:
        raise_flag(session, bot, "bot_timing", "point intervals too regular")
    secret = study.settings.resolved_secret_key()
    kept = export(study, tmp_path / "all", formats=("csv",))
    assert player_pseudonym(secret, bot) in {row["player"] for row in csv_rows(tmp_path / "all")}
    assert kept["filters"]["excluded_flags"] == []

    monkeypatch.setattr("clickme.core.config.get_settings", lambda: study.settings)
    out = tmp_path / "no-bots"
    args = ["export", "--campaign", "study", "--out", str(out), "--format", "csv"]
    flags = ["--exclude-flag", "bot_timing", "--exclude-flag", "no_effort"]
    result = CliRunner().invoke(app, [*args, "--splits", "0", *flags])
    assert result.exit_code == 0, result.output
    assert player_pseudonym(secret, bot) not in {row["player"] for row in csv_rows(out)}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filters"]["excluded_flags"] == ["bot_timing", "no_effort"]
    assert manifest["filters"]["map_settings"]["exclude_flags"] == ["bot_timing", "no_effort"]
    assert manifest["counts"]["players"] == kept["counts"]["players"] - 1


def test_repeat_rounds_are_left_out_of_every_research_output(study: Study, tmp_path: Path) -> None:
    """A mouse player replays photos 3 and 4 (as the demo lets them): counted, each would have a
    fourth valid round and so a map; left out, the export is what it was without them."""
    before = preview(study)["counts"]
    with study.database.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "study"))
        replayed = [session.get_one(Image, i) for i in study.image_ids[2:4]]
        repeats = add_rounds(
            session, campaign, replayed, study.mouse_players[:1], seed=9, is_repeat=True
        )
    assert preview(study)["counts"] == before
    out = tmp_path / "export"
    manifest = export(study, out, formats=("npz", "csv", "parquet"))
    assert manifest["counts"]["images_with_map"] == 2
    assert manifest["filters"]["repeat_rounds"] == "left out"
    exported = {int(row["round_id"]) for row in csv_rows(out)}
    assert exported and not exported & set(repeats)
    parquet = {row["round_id"] for row in pq.read_table(out / "rounds.parquet").to_pylist()}
    assert parquet == exported
