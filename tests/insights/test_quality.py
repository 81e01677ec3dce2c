"""Player quality: measures from real rounds played through the API, and the automatic flags."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from clickme.campaigns.models import Campaign
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.game.models import Round
from clickme.images.models import Image
from clickme.insights.flags import refresh_flags, resolve_flag
from clickme.insights.quality import FlagRules, consensus_distance, flags_for, measure_players
from clickme.players import service
from clickme.players.models import PlayerFlag
from clickme.players.schemas import PlayerMeasures
from clickme.scoring.reveal import PreparedImageCache
from tests.players.painting import act_as, box_stroke, line_stroke, new_player, play

CENTRE = box_stroke(0.3, 0.3, 0.4)
CORNER = box_stroke(0.0, 0.0, 0.25)
EVERYTHING = box_stroke(0.0, 0.0, 1.0)


def measures(**values: object) -> PlayerMeasures:
    base = dict(
        rounds=10,
        success_rate=0.5,
        mean_revealed=0.2,
        speed_px_s=800.0,
        first_point_ms=400.0,
        display_ms=300.0,
        intervals=500,
        interval_cv=0.6,
        consensus_distance=0.3,
        consensus_images=10,
        catch_rounds=5,
        catch_accuracy=1.0,
    )
    return PlayerMeasures(**{**base, **values})


def measure(database: Database, settings: Settings, player_ids: list[int]) -> dict:
    with database.session() as session:
        return measure_players(session, PreparedImageCache(8), settings.images_dir, player_ids)


def refresh(database: Database, settings: Settings, rules: FlagRules = FlagRules()):
    with database.session() as session:
        return refresh_flags(session, PreparedImageCache(8), settings.images_dir, rules=rules)


def flags_of(database: Database, player_id: int) -> dict[str, PlayerFlag]:
    with database.session() as session:
        rows = session.scalars(select(PlayerFlag).where(PlayerFlag.player_id == player_id))
        return {flag.kind: flag for flag in rows}


def test_consensus_distance_is_one_minus_the_correlation() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((56, 56))
    assert consensus_distance(a, a) == pytest.approx(0)
    assert consensus_distance(a, 1 - a) == pytest.approx(2)
    assert consensus_distance(a, np.full((56, 56), 0.5)) is None


def test_an_ordinary_player_raises_no_flag() -> None:
    assert flags_for(measures()) == {}


@pytest.mark.parametrize(
    ("values", "kind", "words"),
    [
        ({"mean_revealed": 0.93}, "paints_everything", "93%"),
        ({"interval_cv": 0.01, "intervals": 50}, "bot_timing", "too regular"),
        ({"speed_px_s": 25000.0}, "bot_timing", "impossibly fast"),
        ({"catch_accuracy": 0.25, "catch_rounds": 4}, "fails_catch_trials", "25% of 4"),
        ({"consensus_distance": 0.9, "consensus_images": 5}, "far_from_consensus", "5 images"),
    ],
)
def test_each_flag_has_its_reason(values: dict, kind: str, words: str) -> None:
    flags = flags_for(measures(**values))
    assert list(flags) == [kind] and words in flags[kind]


@pytest.mark.parametrize(
    "values",
    [
        {"interval_cv": 0.01, "intervals": 49},
        {"catch_accuracy": 0.0, "catch_rounds": 3},
        {"consensus_distance": 1.5, "consensus_images": 4},
        {"mean_revealed": 0.8, "speed_px_s": 20000.0, "interval_cv": 0.05},
    ],
)
def test_too_little_evidence_or_at_the_threshold_raises_nothing(values: dict) -> None:
    assert flags_for(measures(**values)) == {}


def test_measures_of_a_painting_player(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    player_id = new_player(client)
    for _ in range(2):
        play(client, CENTRE)
    measured = measure(database, game_settings, [player_id])[player_id]
    assert measured.rounds == 2 and measured.success_rate in (0.0, 0.5, 1.0)
    assert 0.1 < measured.mean_revealed < 0.3  # a 40% square: 16% of the crop, soft edges
    assert 8 <= measured.first_point_ms < 40
    assert 100 < measured.speed_px_s < 20000
    assert measured.interval_cv > 0.2 and measured.intervals > 50
    assert measured.consensus_distance is None and measured.consensus_images == 0
    assert measured.catch_rounds == 0 and measured.catch_accuracy is None


def test_a_player_who_paints_everything_is_flagged(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    painter = new_player(client)
    play(client, EVERYTHING)
    careful = new_player(client)
    play(client, CENTRE)
    report = refresh(database, game_settings)
    assert report.players == 2 and report.raised == 1
    assert "paints 100% of the image" in flags_of(database, painter)["paints_everything"].reason
    assert flags_of(database, careful) == {}


def test_bots_are_flagged_for_regular_or_impossibly_fast_timing(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    regular = new_player(client)
    play(client, line_stroke(n=60, gap_px=3, gap_ms=16))
    fast = new_player(client)
    play(client, line_stroke(n=20, gap_px=15, gap_ms=0))
    human = new_player(client)
    play(client, CENTRE)
    refresh(database, game_settings)
    assert "too regular" in flags_of(database, regular)["bot_timing"].reason
    assert "impossibly fast" not in flags_of(database, regular)["bot_timing"].reason
    assert "impossibly fast" in flags_of(database, fast)["bot_timing"].reason
    assert flags_of(database, human) == {}


def test_failing_catch_trials_is_flagged(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    with database.session() as session:  # four catch images, and every round draws one
        catch_ids = session.scalars(select(Image.id).order_by(Image.id).limit(4)).all()
        session.execute(update(Image).where(Image.id.in_(catch_ids)).values(is_catch=True))
        session.execute(update(Campaign).values(catch_trial_share=1.0))
    player_id = new_player(client)
    for _ in range(4):  # a few points in a corner: the DNN cannot get it
        play(client, lambda r: [[1.0, 1.0, 10], [2.0, 2.0, 30]])
    measured = measure(database, game_settings, [player_id])[player_id]
    assert measured.catch_rounds == 4 and measured.catch_accuracy == 0
    refresh(database, game_settings)
    assert "0% of 4 catch trials" in flags_of(database, player_id)["fails_catch_trials"].reason


def test_maps_far_from_the_consensus_are_flagged(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    """Two players paint the centre of all five images, one paints a corner."""
    centre_a, centre_b, odd = (new_player(client) for _ in range(3))
    for player_id, stroke in ((centre_a, CENTRE), (centre_b, CENTRE), (odd, CORNER)):
        act_as(client, game_settings, player_id)
        for _ in range(5):
            play(client, stroke)
    measured = measure(database, game_settings, [centre_a, odd])
    assert measured[odd].consensus_images == 5 and measured[odd].consensus_distance > 0.8
    assert measured[centre_a].consensus_images == 5
    assert measured[centre_a].consensus_distance < measured[odd].consensus_distance
    refresh(database, game_settings)
    assert "5 images" in flags_of(database, odd)["far_from_consensus"].reason
    assert "far_from_consensus" not in flags_of(database, centre_a)

    with database.session() as session:  # an excluded player no longer counts in the consensus
        service.exclude_player(session, odd, "corner painter", None)
    alone = measure(database, game_settings, [centre_a])[centre_a]
    assert alone.consensus_distance < measured[centre_a].consensus_distance


def test_refreshing_flags_is_idempotent_and_respects_resolved_flags(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    painter = new_player(client)
    play(client, EVERYTHING)
    first = refresh(database, game_settings)
    flag = flags_of(database, painter)["paints_everything"]
    again = refresh(database, game_settings)
    assert (first.raised, again.raised, again.cleared) == (1, 0, 0)
    assert flags_of(database, painter)["paints_everything"].id == flag.id

    with database.session() as session:
        resolve_flag(session, painter, "paints_everything")
    refresh(database, game_settings, FlagRules(max_mean_revealed=1.0))
    assert flags_of(database, painter)["paints_everything"].resolved  # kept, not cleared

    with database.session() as session:
        session.execute(update(PlayerFlag).values(resolved=False))
    cleared = refresh(database, game_settings, FlagRules(max_mean_revealed=1.0))
    assert cleared.cleared == 1 and flags_of(database, painter) == {}


def test_repeat_rounds_measure_nothing(
    client: TestClient, database: Database, game_settings: Settings
) -> None:
    """A replayed photo (the demo's repeats) says nothing of the player: it is left out."""
    player_id = new_player(client)
    first = play(client, CENTRE)
    play(client, EVERYTHING)
    with database.session() as session:
        session.execute(update(Round).where(Round.id != first["round_id"]).values(is_repeat=True))
    measured = measure(database, game_settings, [player_id])[player_id]
    assert measured.rounds == 1 and measured.mean_revealed < 0.3
