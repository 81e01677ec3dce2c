"""The alignment score: blur like the human maps, Spearman per image, mean, ceiling share."""

from pathlib import Path

import numpy as np
import pytest
import torch

from clickme.alignment.score import (
    Explainer,
    blur_like_human_maps,
    campaign_alignment,
    campaign_ceiling,
    campaign_images,
    campaign_targets,
    dataset_alignment,
    image_alignments,
    summarise,
)
from clickme.campaigns.models import Campaign
from clickme.data import ClickMeDataset
from clickme.exports.service import ExportRequest, run_export
from clickme.images.models import ImageSet
from clickme.maps.aggregate import MapSettings, human_map, to_eval
from clickme.maps.reliability import campaign_reliability
from clickme.scoring.registry import Preprocessing
from tests.alignment.conftest import Played
from tests.alignment.tiny import MapNet, TinyNet
from tests.exports.fill import add_photos, add_players, add_rounds, left_edge

SETTINGS = MapSettings()


@pytest.mark.parametrize("kind", ["disc", "gaussian"])
def test_a_saliency_point_is_blurred_as_a_painted_point(kind: str) -> None:
    # A 256 x 256 photo: its evaluation crop is pixels 16 to 240, unscaled.
    settings = MapSettings(blur=kind)
    painted = to_eval(human_map([np.array([[128.5, 100.5]])], 256, 256, settings))
    saliency = np.zeros((224, 224))
    saliency[100 - 16, 128 - 16] = 1.0
    blurred = blur_like_human_maps(saliency, settings)
    np.testing.assert_allclose(blurred / blurred.max(), painted, atol=1e-5)
    assert blur_like_human_maps(np.stack([saliency, saliency]), settings).shape == (2, 224, 224)


def test_the_summary_is_the_mean_with_a_bootstrap_interval_and_a_ceiling_share() -> None:
    values = {1: 0.2, 2: 0.4, 3: float("nan"), 4: 0.6}
    score = summarise(values, 0.8, np.random.default_rng(0))
    assert score.per_image == {1: 0.2, 2: 0.4, 4: 0.6} and score.n_images == 3
    assert score.mean == pytest.approx(0.4)
    assert 0.2 <= score.ci_low < score.mean < score.ci_high <= 0.6
    share, low, high = score.of_ceiling()
    assert share == pytest.approx(0.5)
    assert (low, high) == pytest.approx((score.ci_low / 0.8, score.ci_high / 0.8))
    assert summarise(values, None, np.random.default_rng(0)).of_ceiling() is None
    with pytest.raises(ValueError, match="no image"):
        summarise({1: float("nan")}, None, np.random.default_rng(0))


def smooth_map() -> np.ndarray:
    rows, cols = np.mgrid[0:224, 0:224]
    return np.exp(-((rows - 80) ** 2 + (cols - 140) ** 2) / (2 * 40**2)) + cols / 2240


def test_a_model_whose_saliency_is_the_human_map_scores_about_one() -> None:
    human = smooth_map().astype(np.float32)
    images, labels = torch.rand(2, 3, 224, 224), torch.tensor([0, 1])
    aligned = Explainer(MapNet(torch.from_numpy(human)).eval(), Preprocessing())
    values = image_alignments(aligned, images, labels, np.stack([human, human]), SETTINGS)
    assert min(values) > 0.99
    opposed = Explainer(MapNet(torch.from_numpy(human.max() - human)).eval(), Preprocessing())
    values = image_alignments(opposed, images, labels, np.stack([human, human]), SETTINGS)
    assert max(values) < -0.5  # not -1: the blur's zero surround lowers the borders


def tiny_explainer() -> Explainer:
    torch.manual_seed(0)
    return Explainer(TinyNet().eval(), Preprocessing(), batch_size=8)


def test_a_campaign_s_alignment_covers_its_mapped_images_with_their_ceiling(
    played: Played,
) -> None:
    with played.database.session() as session:
        images = campaign_images(session, played.campaign_id, SETTINGS)
        assert [image.image_id for image in images] == played.image_ids
        chosen = set(played.image_ids[:5])
        assert {i.image_id for i in campaign_images(session, played.campaign_id, SETTINGS, chosen)
                } == chosen  # fmt: skip
        ceiling = campaign_ceiling(images, SETTINGS, 5, np.random.default_rng(3))
        score = campaign_alignment(
            session, images, tiny_explainer(), played.settings.images_dir, SETTINGS, ceiling,
            np.random.default_rng(3),
        )  # fmt: skip
    assert sorted(score.per_image) == played.image_ids
    assert all(-1 <= value <= 1 for value in score.per_image.values())
    reliability = campaign_reliability(images, SETTINGS, 5, np.random.default_rng(3))
    assert ceiling == pytest.approx(reliability["ceiling"].corrected)
    assert score.ceiling == ceiling
    assert score.of_ceiling()[0] == pytest.approx(score.mean / ceiling)


def test_images_without_a_map_target_are_left_out_and_counted(played: Played) -> None:
    """Too few valid rounds, or no painted pixel in the 224 view (Spearman would be NaN)."""
    settings = MapSettings(min_rounds=3)
    with played.database.session() as session:
        campaign = session.get_one(Campaign, played.campaign_id)
        image_set = session.get_one(ImageSet, campaign.image_set_id)
        _, (lonely, wide) = add_photos(
            session, played.settings.images_dir, 2, (640, 240), seed=8, image_set=image_set
        )
        add_rounds(session, campaign, [lonely], add_players(session, 1), seed=2)
        add_rounds(session, campaign, [wide], add_players(session, 3), seed=3, painter=left_edge)
        targets, tally = campaign_targets(session, played.campaign_id, settings)
    assert [image.image_id for image in targets] == played.image_ids
    assert tally.lines() == [
        "1 image has fewer than 3 valid rounds",
        "1 image has no painted pixel in the 224 x 224 evaluation view",
    ]


def test_an_export_scores_as_its_campaign(played: Played, tmp_path: Path) -> None:
    request = ExportRequest(campaign=played.slug, formats=("webdataset",), n_splits=0)
    with played.database.session() as session:
        run_export(session, request, tmp_path, secret="s", images_dir=played.settings.images_dir)
        images = campaign_images(session, played.campaign_id, SETTINGS)
        from_campaign = campaign_alignment(
            session, images, tiny_explainer(), played.settings.images_dir, SETTINGS, None,
            np.random.default_rng(0),
        )  # fmt: skip
    dataset = ClickMeDataset(tmp_path)
    from_export = dataset_alignment(
        tiny_explainer(), dataset, dataset.image_ids, SETTINGS, np.random.default_rng(0)
    )
    assert from_export.per_image.keys() == from_campaign.per_image.keys()
    for image_id, value in from_export.per_image.items():  # maps stored as 16-bit PNGs
        assert value == pytest.approx(from_campaign.per_image[image_id], abs=0.01)
    assert from_export.ceiling is None
