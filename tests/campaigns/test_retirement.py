"""Retirement by reliability: measured after each round, never assigned again (both DBs)."""

import numpy as np
import pytest
from sqlalchemy import select

from clickme.campaigns import service
from clickme.campaigns.models import ImagePlays
from clickme.campaigns.schemas import CampaignUpdate
from clickme.core.errors import ClickmeError
from clickme.game import service as game
from clickme.game.models import PointBatch, Round
from clickme.insights.progress import campaign_progress
from clickme.insights.stats import image_cards
from clickme.maps.retirement import measure_after_round
from tests.campaigns.conftest import GRACE_MS, RULE, START_BOUND_S, World, load
from tests.exports.fill import POINTS_PER_ROUND
from tests.game.test_store import expressions_built_during, forbid_sessions, statements_on
from tests.maps.painters import Painter, painter

TARGET = 0.8


def play(world: World, campaign_id: int, player_id: int, paint: Painter, seed: int) -> int | None:
    """One finished round of the player (the image the campaign assigns, points from ``paint``),
    measured after it ended as the game does; None when the campaign gives them no image."""
    with world.database.session() as session:
        try:
            new = game.start_round(
                session,
                player_id,
                load(session, campaign_id),
                (1, 1),
                RULE,
                GRACE_MS,
                START_BOUND_S,
            )
        except ClickmeError as refusal:
            assert refusal.code in ("no_images_left", "campaign_complete")
            return None
        round_, image = session.get_one(Round, new.id), new.image
        round_.outcome, round_.last_seq, round_.n_points = "timeout", 1, POINTS_PER_ROUND
        data = paint(image, np.random.default_rng(seed))
        session.add(
            PointBatch(
                round_id=round_.id, seq=1, n_points=POINTS_PER_ROUND, data=data, received_ms=100
            )
        )
        round_id = round_.id
    measure_after_round(world.database, round_id)
    return round_id


def play_all(world: World, campaign_id: int, paint: Painter, players: int) -> list[int]:
    """Each new player plays until the campaign gives them no more image; the round ids."""
    round_ids = []
    for player_id in world.add_players(players):
        while (round_id := play(world, campaign_id, player_id, paint, len(round_ids))) is not None:
            round_ids.append(round_id)
    return round_ids


def image_plays(world: World, campaign_id: int) -> list[ImagePlays]:
    with world.database.session() as session:
        return list(
            session.scalars(
                select(ImagePlays)
                .where(ImagePlays.campaign_id == campaign_id)
                .order_by(ImagePlays.image_id)
            )
        )


def test_consistent_players_retire_images_before_their_play_count(world: World) -> None:
    campaign_id = world.campaign(retire_at_reliability=TARGET, plays_wanted_per_image=10)
    play_all(world, campaign_id, painter(), players=10)
    rows = image_plays(world, campaign_id)
    assert len(rows) == 3
    for row in rows:
        assert row.retired_by_reliability and row.reliability >= TARGET
        assert 2 <= row.reliability_rounds == row.plays < 10
    latecomer = world.add_players(1)[0]
    assert play(world, campaign_id, latecomer, painter(), 99) is None  # never assigned again
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        with pytest.raises(ClickmeError) as refused:
            game.start_round(session, latecomer, campaign, (1, 1), RULE, GRACE_MS, START_BOUND_S)
        assert refused.value.code == "campaign_complete"
        progress = campaign_progress(session, [campaign])[campaign_id]
        assert (progress.images_retired, progress.images_total) == (3, 3)
        cards = image_cards(session, campaign, 1, 10).images
        assert all(card.retired and card.plays < 10 for card in cards)


def test_incoherent_players_retire_by_play_count_only(world: World) -> None:
    campaign_id = world.campaign(retire_at_reliability=TARGET, plays_wanted_per_image=6)
    play_all(world, campaign_id, painter(careless=True), players=8)
    rows = image_plays(world, campaign_id)
    for row in rows:
        assert not row.retired_by_reliability and row.plays == 6
        assert row.reliability_rounds == 6 and row.reliability < 0.5


def test_without_a_target_nothing_is_measured(world: World) -> None:
    campaign_id = world.campaign(plays_wanted_per_image=4)
    round_ids = play_all(world, campaign_id, painter(), players=4)
    assert len(round_ids) == 12
    assert measure_after_round(world.database, round_ids[-1]) is None
    for row in image_plays(world, campaign_id):
        assert (row.reliability, row.reliability_rounds, row.retired_by_reliability) == (
            None,
            0,
            False,
        )


def test_a_round_of_a_campaign_without_a_target_costs_one_query(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every round that ends is handed to retirement: one without a target to reach is told
    apart in one query (the round, its campaign's target and its image's play counter), built
    once and kept, in autocommit: no session, so no BEGIN and COMMIT around it."""
    campaign_id = world.campaign(plays_wanted_per_image=4)
    round_id = play(world, campaign_id, world.add_players(1)[0], painter(), 0)
    forbid_sessions(monkeypatch, world.database)
    due: list[object] = []
    built: list[int] = []
    statements = statements_on(
        world.database,
        lambda: built.append(
            expressions_built_during(
                monkeypatch, lambda: due.append(measure_after_round(world.database, round_id))
            )
        ),
    )
    assert due == [None] and len(statements) == 1, statements
    assert built == [0]


def test_an_image_is_measured_again_only_on_new_valid_rounds(world: World) -> None:
    campaign_id = world.campaign(retire_at_reliability=0.999, plays_wanted_per_image=6)
    round_ids = play_all(world, campaign_id, painter(), players=5)  # a map needs 5 rounds
    assert len(round_ids) == 15
    last = round_ids[-1]
    assert measure_after_round(world.database, last) is None  # measured already on 5 rounds
    with world.database.session() as session:
        first_round = session.get_one(Round, round_ids[0])
        first_round.outcome = "skip"  # a skipped round does not count in maps
    assert measure_after_round(world.database, round_ids[0]) is None
    rows = image_plays(world, campaign_id)
    assert [row.reliability_rounds for row in rows] == [5, 5, 5]
    assert all(0 < row.reliability < 0.999 and not row.retired_by_reliability for row in rows)


def test_a_changed_target_applies_at_once_to_the_measured_values(world: World) -> None:
    campaign_id = world.campaign(retire_at_reliability=0.999, plays_wanted_per_image=10)
    play_all(world, campaign_id, painter(), players=5)  # a map needs 5 rounds
    measured = {row.image_id: row.reliability for row in image_plays(world, campaign_id)}
    lowest, highest = min(measured.values()), max(measured.values())
    assert lowest < highest < 0.999

    def retarget(target: float | None) -> dict[int, bool]:
        with world.database.session() as session:
            campaign = load(session, campaign_id)
            service.update_campaign(session, campaign, CampaignUpdate(retire_at_reliability=target))
        return {row.image_id: row.retired_by_reliability for row in image_plays(world, campaign_id)}

    assert retarget(highest) == {image: value >= highest for image, value in measured.items()}
    assert retarget(lowest) == dict.fromkeys(measured, True)
    assert retarget(0.999) == dict.fromkeys(measured, False)
    assert retarget(lowest) == dict.fromkeys(measured, True)
    assert retarget(None) == dict.fromkeys(measured, False)
