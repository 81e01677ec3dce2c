"""Fair assignment under concurrency on PostgreSQL: quotas hold, nobody repeats, least first."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from clickme.campaigns.models import ImagePlays
from clickme.core.errors import ClickmeError
from clickme.game import service as game
from clickme.game.models import Round
from tests.campaigns.conftest import GRACE_MS, RULE, START_BOUND_S, World, load

PLAYERS = 40


@pytest.fixture
def pg_world(world: World) -> World:
    if world.database.engine.dialect.name != "postgresql":
        pytest.skip("row locking is PostgreSQL's; SQLite serialises every write")
    return world


def play_concurrently(world: World, campaign_id: int, rounds_each: int) -> Counter[str]:
    """Every player plays up to `rounds_each` rounds that count (each ended, painted enough,
    before the next starts), all players at once; the refusals."""
    players = world.add_players(PLAYERS)
    gate = threading.Barrier(PLAYERS)
    refusals: Counter[str] = Counter()

    def play(player_id: int) -> None:
        gate.wait()
        for _ in range(rounds_each):
            try:
                with world.database.session() as session:
                    campaign = load(session, campaign_id)
                    new = game.start_round(
                        session, player_id, campaign, (1, 1), RULE, GRACE_MS, START_BOUND_S
                    )
                    round_ = session.get_one(Round, new.id)
                    round_.outcome, round_.n_points = "timeout", RULE.min_points
            except ClickmeError as refused:
                refusals[refused.code] += 1

    with ThreadPoolExecutor(PLAYERS) as pool:
        list(pool.map(play, players))
    return refusals


def stored_rounds(world: World, campaign_id: int) -> list[tuple[int, int]]:
    with world.database.session() as session:
        rows = session.execute(
            select(Round.player_id, Round.image_id)
            .where(Round.campaign_id == campaign_id)
            .order_by(Round.id)
        )
        return [tuple(row) for row in rows]


def test_quotas_hold_and_nobody_repeats_under_concurrency(pg_world: World) -> None:
    campaign_id = pg_world.campaign(plays_wanted_per_image=5)
    refusals = play_concurrently(pg_world, campaign_id, rounds_each=3)
    rounds = stored_rounds(pg_world, campaign_id)
    per_image = Counter(image for _player, image in rounds)
    assert per_image == dict.fromkeys(pg_world.image_ids, 5)
    assert len(set(rounds)) == len(rounds)  # no player got an image twice
    assert sum(refusals.values()) == PLAYERS * 3 - 15
    assert set(refusals) <= {"campaign_complete", "no_images_left"}
    with pg_world.database.session() as session:
        counters = session.scalars(
            select(ImagePlays.plays).where(ImagePlays.campaign_id == campaign_id)
        ).all()
    assert counters == [5, 5, 5]


def test_least_played_images_go_first_under_concurrency(pg_world: World) -> None:
    """30 images, 40 players at once: every image once before any image twice."""
    pg_world.add_images(27)
    campaign_id = pg_world.campaign(plays_wanted_per_image=1000, assignment_order="breadth")
    refusals = play_concurrently(pg_world, campaign_id, rounds_each=1)
    assert not refusals
    per_image = Counter(image for _player, image in stored_rounds(pg_world, campaign_id))
    assert set(per_image) == set(pg_world.image_ids)
    assert sorted(per_image.values()) == [1] * 20 + [2] * 10


def test_depth_first_fills_images_to_a_map_and_no_further_under_concurrency(
    pg_world: World,
) -> None:
    """40 images, 40 players at once, depth first: no image passes a map's minimum of rounds
    while fresh images are left, and an image gets its second round while fresh images are
    left (breadth first would give each image one).

    Players whose transactions overlap skip each other's locked images (nobody waits for a row
    lock), so the overlap spreads rounds over fresh images: with as many images as the pool has
    connections (30), all of them could be taken at once, one round each (it happened in about
    one run of 15). With 40, the players past the pool's 30 connections start once a round is
    committed, and the first of them takes that image again."""
    pg_world.add_images(37)
    campaign_id = pg_world.campaign(plays_wanted_per_image=1000, assignment_order="depth")
    refusals = play_concurrently(pg_world, campaign_id, rounds_each=1)
    assert not refusals
    per_image = Counter(image for _player, image in stored_rounds(pg_world, campaign_id))
    assert sum(per_image.values()) == PLAYERS
    assert max(per_image.values()) <= RULE.min_rounds
    assert len(per_image) < len(pg_world.image_ids)  # filled, not spread one round each
