"""Repeats in assignment (service layer, both databases): once a player has seen every image of
a campaign that allows it, they get one again, the least recently played, marked a repeat; a
repeat never takes or gives back a play, so quotas, order and the maps stay as they were."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from clickme.campaigns import service
from clickme.campaigns.models import ImagePlays
from clickme.campaigns.schemas import CampaignUpdate
from clickme.core.errors import ClickmeError
from clickme.game import service as game
from clickme.game.models import Round
from clickme.images.models import ImageSet
from clickme.maps.aggregate import MapSettings
from clickme.maps.valid import valid_round_ids
from clickme.scoring.tables import DnnModel
from tests.campaigns.conftest import RULE, World, load
from tests.campaigns.test_service import played, plays, refusal, start


def test_a_player_who_has_seen_every_image_replays_the_least_recent_first(world: World) -> None:
    campaign_id = world.campaign(repeat_when_exhausted=True)
    player = world.add_players(1)[0]
    firsts = [played(world, campaign_id, player) for _ in world.image_ids]
    assert not any(round_.is_repeat for round_ in firsts)
    assert plays(world, campaign_id) == dict.fromkeys(world.image_ids, 1)
    order = [round_.image_id for round_ in firsts]
    repeats = [played(world, campaign_id, player) for _ in range(2 * len(order))]
    assert all(round_.is_repeat for round_ in repeats)
    assert [round_.image_id for round_ in repeats] == order + order  # in turn, never the last
    assert plays(world, campaign_id) == dict.fromkeys(world.image_ids, 1)
    with world.database.session() as session:
        counted = valid_round_ids(session, campaign_id, MapSettings(min_rounds=1), order)
    assert counted == {round_.id for round_ in firsts}


def test_a_repeat_ended_without_counting_gives_back_no_play(world: World) -> None:
    campaign_id = world.campaign(repeat_when_exhausted=True)
    player = world.add_players(1)[0]
    for _ in world.image_ids:
        played(world, campaign_id, player)
    start(world, campaign_id, player)  # a repeat left in flight,
    start(world, campaign_id, player)  # abandoned by the next one,
    skipped = start(world, campaign_id, player)
    with world.database.session() as session:
        game.skip_round(session, skipped.id, player, 0, RULE)  # and one skipped
    assert plays(world, campaign_id) == dict.fromkeys(world.image_ids, 1)


def test_without_the_setting_or_past_the_player_s_limit_there_is_no_repeat(
    world: World,
) -> None:
    plain = world.campaign()
    limited = world.campaign(repeat_when_exhausted=True, max_images_per_player=2)
    player = world.add_players(1)[0]
    for _ in world.image_ids:
        played(world, plain, player)
    assert refusal(world, plain, player) == "no_images_left"
    for _ in range(2):
        played(world, limited, player)
    assert refusal(world, limited, player) == "player_done"


def test_switching_repeats_on_makes_a_new_version(world: World) -> None:
    campaign_id = world.campaign()
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        service.update_campaign(session, campaign, CampaignUpdate(repeat_when_exhausted=True))
        latest = service.versions(session, campaign)[-1]
    assert (latest.version, latest.settings["repeat_when_exhausted"]) == (2, True)


def test_the_demo_campaign_plays_again_and_a_new_campaign_does_not(world: World) -> None:
    with world.database.session() as session:
        demo = service.ensure_default_campaign(
            session,
            session.get_one(ImageSet, world.image_set_id),
            session.get_one(DnnModel, world.model_id),
        )
        assert demo.repeat_when_exhausted is True
    campaign_id = world.campaign()
    with world.database.session() as session:
        assert load(session, campaign_id).repeat_when_exhausted is False


def test_repeats_take_no_play_under_concurrency(world: World) -> None:
    """40 players at once, each starting 5 rounds on 3 images with repeats on: a player gets a
    repeat only once they have played every image, nobody gets an image twice but as a repeat,
    and the counters hold the first plays only."""
    if world.database.engine.dialect.name != "postgresql":
        pytest.skip("row locking is PostgreSQL's; SQLite serialises every write")
    campaign_id = world.campaign(plays_wanted_per_image=1000, repeat_when_exhausted=True)
    players = world.add_players(40)
    gate = threading.Barrier(len(players))
    refusals: Counter[str] = Counter()

    def play(player_id: int) -> None:
        gate.wait()
        for _ in range(5):
            try:
                played(world, campaign_id, player_id)
            except ClickmeError as refused:
                refusals[refused.code] += 1

    with ThreadPoolExecutor(len(players)) as pool:
        list(pool.map(play, players))
    assert set(refusals) <= {"assignment_busy"}  # 3 rows for 40 players: some wait too long
    with world.database.session() as session:
        rounds = session.execute(
            select(Round.player_id, Round.image_id, Round.is_repeat)
            .where(Round.campaign_id == campaign_id)
            .order_by(Round.id)
        ).all()
        counters = dict(
            session.execute(
                select(ImagePlays.image_id, ImagePlays.plays).where(
                    ImagePlays.campaign_id == campaign_id
                )
            ).all()
        )
    firsts = [(player, image) for player, image, repeat in rounds if not repeat]
    assert len(set(firsts)) == len(firsts)
    assert counters == Counter(image for _player, image in firsts)
    seen: dict[int, set[int]] = {player: set() for player in players}
    for player, image, repeat in rounds:
        assert repeat == (seen[player] == set(world.image_ids))
        seen[player].add(image)
    assert sum(repeat for _player, _image, repeat in rounds) > 0
