"""Human maps by the published convention, and the valid rounds they are made of."""

import numpy as np
import pytest

from clickme.campaigns.models import Campaign
from clickme.core.db import Database
from clickme.game.models import PointBatch, Round
from clickme.game.points import pack_points
from clickme.images.models import Image, ImageSet
from clickme.maps.aggregate import (
    MapSettings,
    disc_diameter,
    disc_kernel,
    human_map,
    points_map,
    to_eval,
)
from clickme.maps.valid import valid_rounds
from clickme.models.models import DnnModel
from clickme.players.models import Player, PlayerExclusion


@pytest.mark.parametrize(
    ("short_side", "diameter"),
    [(256, 21), (48, 3), (100, 9), (375, 31), (512, 43), (620, 51), (2000, 51), (10, 1)],
)
def test_disc_is_21_px_at_256_scaled_odd_and_capped(short_side: int, diameter: int) -> None:
    kernel = disc_kernel(short_side)
    assert disc_diameter(short_side) == diameter
    assert kernel.shape == (diameter, diameter)
    assert kernel.dtype == np.float64
    assert kernel.sum() == pytest.approx(1.0)
    assert (kernel[diameter // 2, 0] > 0 and kernel[0, 0] == 0) or diameter < 5
    assert np.allclose(kernel, kernel.T) and np.allclose(kernel, kernel[::-1])


def test_points_map_counts_points_per_native_pixel() -> None:
    points = np.array([[0.2, 0.9], [0.7, 0.1], [5.5, 3.0], [63.99, 47.99], [64.0, 1.0], [-0.1, 2]])
    counts = points_map(points, 64, 48)
    assert counts.dtype == np.float32 and counts.shape == (48, 64)
    assert counts[0, 0] == 2 and counts[3, 5] == 1 and counts[47, 63] == 1
    assert counts.sum() == 4  # the two outside the image are dropped


def test_human_map_averages_blurs_and_normalises() -> None:
    settings = MapSettings()
    one = human_map([np.array([[100.5, 100.5]])], 256, 256, settings)
    assert one.dtype == np.float32 and one.shape == (256, 256)
    assert one.max() == 1.0 and one[100, 100] == 1.0
    # twice a 21-px disc: the blur reaches 20 px from the point and no farther
    assert one[100, 120] > 0 and one[100, 121] == 0 and one[100, 80] > 0 and one[100, 79] == 0
    assert one[0, 0] == 0
    # two rounds: where both painted counts twice as much as where one did
    two = human_map([np.array([[50.5, 50.5], [200.5, 200.5]]), np.array([[50.5, 50.5]])], 256, 256)
    assert two[50, 50] == 1.0 and two[200, 200] == pytest.approx(0.5)
    # many points never saturate
    many = human_map([np.full((5000, 2), 10.5)], 256, 256)
    assert many.max() == 1.0 and np.isfinite(many).all()
    assert not human_map([np.empty((0, 2))], 64, 48).any()


def test_gaussian_blur_is_the_alternative() -> None:
    gaussian = human_map([np.array([[100.5, 100.5]])], 256, 256, MapSettings(blur="gaussian"))
    disc = human_map([np.array([[100.5, 100.5]])], 256, 256)
    sigma = disc_diameter(256) / 4
    assert gaussian[100, 100] == 1.0
    assert gaussian[100, 105] == pytest.approx(np.exp(-(5**2) / (2 * sigma**2)), rel=1e-3)
    assert gaussian[100, 105] != pytest.approx(disc[100, 105], abs=0.01)


def test_to_eval_resizes_the_short_side_to_256_and_crops_the_centre_224() -> None:
    native = np.zeros((300, 600), dtype=np.float32)  # scale 256/300: width 512, crop from x 144
    native[:, 300:] = 1.0  # the right half
    crop = to_eval(native)
    assert crop.shape == (224, 224) and crop.dtype == np.float32
    assert crop[:, :100].max() == 0 and crop[:, 120:].min() == pytest.approx(1.0)
    assert crop.max() <= 1.0


@pytest.fixture
def played(database: Database) -> dict:
    """Two images, six players; every rule of validity is broken once on the first image."""
    with database.session() as session:
        image_set = ImageSet(name="set")
        model = DnnModel(name="m", version="1", architecture="a", weights_sha256="0" * 64)
        session.add_all([image_set, model])
        session.flush()
        images = [
            Image(
                image_set_id=image_set.id,
                sha256=str(i),
                file_name=f"{i}.png",
                original_name=f"{i}.png",
                width=64,
                height=48,
                synset="n01440764",
                class_index=i,
            )
            for i in range(2)
        ]
        campaigns = [
            Campaign(
                slug=f"c{i}",
                name=f"c{i}",
                image_set_id=image_set.id,
                model_id=model.id,
                brush_radius=0.06,
                brush_softness=0.5,
                reveal_background="blur",
                background_blur_sigma=12.0,
            )
            for i in range(2)
        ]
        players = [Player(display_name=f"p{i}") for i in range(6)]
        session.add_all(images + campaigns + players)
        session.flush()

        def play(player, image, outcome="correct", n=4, campaign=campaigns[0], version=1):
            round_ = Round(
                player_id=player.id,
                campaign_id=campaign.id,
                campaign_version=version,
                image_id=image.id,
                model_id=model.id,
                model_version="1",
                outcome=outcome,
                n_points=n,
            )
            session.add(round_)
            session.flush()
            points = [(float(player.id % 60) + 0.5, 10.5, 10 * k) for k in range(n)]
            session.add(
                PointBatch(
                    round_id=round_.id, seq=1, n_points=n, data=pack_points(points), received_ms=0
                )
            )
            return round_

        first, second = images
        play(players[4], first, campaign=campaigns[1])  # earlier round in another campaign
        kept = [play(players[0], first), play(players[1], first, "timeout", version=2)]
        play(players[2], first, "skip")
        play(players[3], first, n=2)  # too few points
        play(players[4], first)  # not the player's first round on this image
        play(players[5], first)  # excluded
        session.add(PlayerExclusion(player_id=players[5].id, reason="bot"))
        play(players[0], second)  # a single valid round: too few for a map
        return {
            "campaign": campaigns[0].id,
            "first": first.id,
            "second": second.id,
            "kept_players": [round_.player_id for round_ in kept],
            "p4": players[4].id,
            "p2": players[2].id,
        }


def test_valid_rounds_follow_the_settings(database: Database, played: dict) -> None:
    with database.session() as session:
        found = list(valid_rounds(session, played["campaign"], MapSettings()))
        assert [image.image_id for image in found] == [played["first"]]
        image = found[0]
        assert (image.width, image.height, image.class_index) == (64, 48, 0)
        assert image.player_ids == played["kept_players"]
        assert all(points.shape == (4, 2) for points in image.rounds_points)
        assert image.rounds_points[0][0].tolist() == [played["kept_players"][0] % 60 + 0.5, 10.5]

        loose = MapSettings(
            outcomes=("correct", "timeout", "skip"),
            first_round_only=False,
            min_points=1,
            min_rounds=1,
        )
        everything = {
            image.image_id: image for image in valid_rounds(session, played["campaign"], loose)
        }
        assert set(everything) == {played["first"], played["second"]}
        assert len(everything[played["first"]].player_ids) == 5  # the excluded player never
        assert {played["p4"], played["p2"]} <= set(everything[played["first"]].player_ids)

        only_v2 = list(valid_rounds(session, played["campaign"], loose, campaign_version=2))
        assert [image.player_ids for image in only_v2] == [played["kept_players"][1:]]
        assert list(valid_rounds(session, played["campaign"], MapSettings(min_rounds=3))) == []
