"""Campaign settings, states, versions and fair image assignment (service layer, both DBs)."""

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, update

from clickme.campaigns import service
from clickme.campaigns.models import CampaignVersion, ImagePlays
from clickme.campaigns.schemas import CampaignUpdate
from clickme.core import db
from clickme.core.db import utcnow
from clickme.core.errors import ClickmeError
from clickme.game import service as game
from clickme.game.models import Round
from clickme.images.models import Image, ImageSet
from clickme.insights.progress import campaign_progress
from clickme.maps.aggregate import MapSettings
from clickme.maps.valid import mapped_image_ids
from clickme.scoring.tables import DnnModel
from tests.campaigns.conftest import GRACE_MS, RULE, START_BOUND_S, World, load


def start(world: World, campaign_id: int, player_id: int) -> Round:
    with world.database.session() as session:
        new = game.start_round(
            session, player_id, load(session, campaign_id), (1, 1), RULE, GRACE_MS, START_BOUND_S
        )
        return session.get_one(Round, new.id)


def played(world: World, campaign_id: int, player_id: int) -> Round:
    """A round of the player, painted enough to count and ended."""
    round_ = start(world, campaign_id, player_id)
    with world.database.session() as session:
        stored = session.get_one(Round, round_.id)
        stored.outcome, stored.n_points = "timeout", RULE.min_points
    return round_


def refusal(world: World, campaign_id: int, player_id: int) -> str:
    with pytest.raises(ClickmeError) as refused:
        start(world, campaign_id, player_id)
    return refused.value.code


def plays(world: World, campaign_id: int) -> dict[int, int]:
    with world.database.session() as session:
        rows = session.execute(
            select(ImagePlays.image_id, ImagePlays.plays).where(
                ImagePlays.campaign_id == campaign_id
            )
        )
        return dict(rows.all())


def test_a_new_campaign_is_a_draft_and_gives_no_rounds(world: World) -> None:
    campaign_id = world.campaign(state="draft")
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        assert (campaign.state, campaign.version, campaign.plays_wanted_per_image) == (
            "draft",
            1,
            10,
        )
        with pytest.raises(ClickmeError) as refused:
            service.get_campaign_by_slug(session, campaign.slug)
    assert refused.value.status == 409 and refused.value.code == "campaign_not_started"


@pytest.mark.parametrize(
    ("path", "refused_at"),
    [
        (["active", "paused", "active", "completed"], None),
        (["active", "completed"], None),
        (["active", "paused", "completed"], None),
        (["paused"], 0),
        (["completed"], 0),
        (["active", "draft"], 1),
        (["active", "completed", "active"], 2),
    ],
)
def test_only_allowed_transitions(world: World, path: list[str], refused_at: int | None) -> None:
    campaign_id = world.campaign(state="draft")
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        for step, state in enumerate(path):
            if step == refused_at:
                with pytest.raises(ClickmeError) as error:
                    service.change_state(session, campaign, state)
                assert error.value.code == "invalid_transition"
                return
            service.change_state(session, campaign, state)
        assert campaign.state == path[-1]


def test_activation_needs_images(world: World) -> None:
    campaign_id = world.campaign(state="draft")
    with world.database.session() as session:
        empty = ImageSet(name="empty")
        session.add(empty)
        session.flush()
        campaign = load(session, campaign_id)
        service.update_campaign(session, campaign, CampaignUpdate(image_set_id=empty.id))
        with pytest.raises(ClickmeError) as refused:
            service.change_state(session, campaign, "active")
    assert refused.value.code == "no_images"


def test_live_game_changes_make_versions_other_changes_do_not(world: World) -> None:
    campaign_id = world.campaign(state="draft")
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        service.update_campaign(session, campaign, CampaignUpdate(top_k=3))
        assert campaign.version == 1 and service.versions(session, campaign) == []
        service.change_state(session, campaign, "active", staff_id=None)
        service.update_campaign(session, campaign, CampaignUpdate(name="Renamed", top_k=3))
        assert campaign.version == 1
        service.update_campaign(session, campaign, CampaignUpdate(time_limit_ms=5000))
        service.change_state(session, campaign, "paused")
        service.update_campaign(session, campaign, CampaignUpdate(max_images_per_player=2))
        versions = service.versions(session, campaign)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[0].settings["top_k"] == 3 and versions[0].settings["time_limit_ms"] == 7000
    assert versions[1].settings["time_limit_ms"] == 5000
    assert versions[1].settings["max_images_per_player"] is None
    assert versions[2].settings["max_images_per_player"] == 2


def test_a_completed_campaign_cannot_change(world: World) -> None:
    campaign_id = world.campaign(state="completed")
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        with pytest.raises(ClickmeError) as refused:
            service.update_campaign(session, campaign, CampaignUpdate(name="x"))
    assert refused.value.code == "campaign_completed"


def test_references_and_slugs_are_checked(world: World) -> None:
    first, second = world.campaign(state="draft"), world.campaign(state="draft")
    with world.database.session() as session:
        campaign = load(session, second)
        taken = load(session, first).slug
        for body, code in [
            (CampaignUpdate(slug=taken), "slug_taken"),
            (CampaignUpdate(image_set_id=999), "image_set_not_found"),
            (CampaignUpdate(model_id=999), "model_not_found"),
        ]:
            with pytest.raises(ClickmeError) as refused:
                service.update_campaign(session, campaign, body)
            assert refused.value.code == code
        service.update_campaign(session, campaign, CampaignUpdate(slug=campaign.slug))


def test_rounds_play_by_the_version_they_started_with(world: World) -> None:
    campaign_id = world.campaign(time_limit_ms=7000, top_k=5)
    player_a, player_b = world.add_players(2)
    before = start(world, campaign_id, player_a)
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        body = CampaignUpdate(time_limit_ms=3000, top_k=1, brush_radius=0.1)
        service.update_campaign(session, campaign, body)
    after = start(world, campaign_id, player_b)
    with world.database.session() as session:
        old = game.load_facts(session, before.id, player_a)
        new = game.load_facts(session, after.id, player_b)
    assert (before.campaign_version, after.campaign_version) == (1, 2)
    assert (old.time_limit_ms, old.top_k, old.rule.radius) == (7000, 5, 0.06)
    assert (new.time_limit_ms, new.top_k, new.rule.radius) == (3000, 1, 0.1)
    assert before.model_version == after.model_version == "1"


def test_a_round_records_the_dnn_its_campaign_has_as_it_starts(world: World) -> None:
    """The round's DNN and its version are the campaign's at the round's start (the version
    read by the round's insert itself)."""
    campaign_id = world.campaign()
    player_a, player_b = world.add_players(2)
    before = start(world, campaign_id, player_a)
    with world.database.session() as session:
        other = DnnModel(name="m2", version="7b", architecture="a", weights_sha256="2" * 64)
        session.add(other)
        session.flush()
        service.update_campaign(
            session, load(session, campaign_id), CampaignUpdate(model_id=other.id)
        )
        other_id = other.id
    after = start(world, campaign_id, player_b)
    assert (before.model_id, before.model_version) == (world.model_id, "1")
    assert (after.model_id, after.model_version) == (other_id, "7b")


def shown_ago(world: World, round_id: int, seconds: float) -> None:
    with world.database.session() as session:
        shown = utcnow() - timedelta(seconds=seconds)
        session.execute(update(Round).where(Round.id == round_id).values(shown_at=shown))


def outcome_of(world: World, round_id: int) -> str | None:
    with world.database.session() as session:
        return session.get_one(Round, round_id).outcome


def test_a_new_round_ends_others_rounds_only_past_the_longest_time_limit(world: World) -> None:
    """Others' rounds left running are ended as timeouts by the next round start, once past
    the longest time limit of the campaign's versions (a round started under a longer one
    plays on); at the first version, past its own."""
    campaign_id = world.campaign(time_limit_ms=7000)
    first, second, third, fourth = world.add_players(4)
    early = start(world, campaign_id, first)
    shown_ago(world, early.id, 7.5)
    start(world, campaign_id, second)  # version 1: 7 s, no more
    assert outcome_of(world, early.id) == "timeout"
    long_round = start(world, campaign_id, first)
    with world.database.session() as session:
        body = CampaignUpdate(time_limit_ms=3000)
        service.update_campaign(session, load(session, campaign_id), body)
    shown_ago(world, long_round.id, 5)  # past the new 3 s, within its own 7 s
    start(world, campaign_id, third)
    assert outcome_of(world, long_round.id) is None
    shown_ago(world, long_round.id, 7.5)
    start(world, campaign_id, fourth)
    assert outcome_of(world, long_round.id) == "timeout"


def test_least_played_first_never_twice_and_retired_never(world: World) -> None:
    campaign_id = world.campaign(plays_wanted_per_image=2, assignment_order="breadth")
    players = world.add_players(7)
    got = [played(world, campaign_id, p).image_id for p in players[:3]]
    assert sorted(got) == sorted(world.image_ids)  # each image once before any twice
    assert set(plays(world, campaign_id).values()) == {1}
    again = [played(world, campaign_id, players[0]).image_id for _ in range(2)]
    assert got[0] not in again and len(set(again)) == 2
    assert refusal(world, campaign_id, players[0]) == "no_images_left"
    for player in players[3:4]:
        start(world, campaign_id, player)
    assert set(plays(world, campaign_id).values()) == {2}
    assert refusal(world, campaign_id, players[4]) == "campaign_complete"


def test_a_skip_gives_the_play_back(world: World) -> None:
    campaign_id = world.campaign(plays_wanted_per_image=1)
    first, second, third, fourth = world.add_players(4)
    skipped = start(world, campaign_id, first)
    start(world, campaign_id, second)
    start(world, campaign_id, third)
    assert refusal(world, campaign_id, fourth) == "campaign_complete"
    with world.database.session() as session:
        game.skip_round(session, skipped.id, first, 0, RULE)
        game.skip_round(session, skipped.id, first, 0, RULE)  # a repeat gives nothing back twice
    assert plays(world, campaign_id)[skipped.image_id] == 0
    assert start(world, campaign_id, fourth).image_id == skipped.image_id


def test_a_player_stops_at_the_campaigns_maximum(world: World) -> None:
    campaign_id = world.campaign(max_images_per_player=2)
    (player,) = world.add_players(1)
    played(world, campaign_id, player)
    played(world, campaign_id, player)
    with pytest.raises(ClickmeError) as refused:
        start(world, campaign_id, player)
    assert (refused.value.status, refused.value.code) == (409, "player_done")


def test_catch_trials_come_at_their_share_and_never_retire(world: World) -> None:
    catch_ids = set(world.add_images(2, is_catch=True))
    campaign_id = world.campaign(catch_trial_share=0.5, plays_wanted_per_image=1)
    players = world.add_players(30)
    rng = random.Random(7)
    shown = []
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        for player in players:
            try:
                history = game.player_history(campaign_id, player)
                shown.append(
                    service.pick_image(session, campaign, RULE.min_rounds, history, rng).image.id
                )
            except ClickmeError as refused:
                assert refused.code == "campaign_complete"
    caught = [image for image in shown if image in catch_ids]
    assert 8 <= len(caught) <= 22  # about half of 30 draws, catch images never run out
    assert sorted(set(shown) - catch_ids) == sorted(world.image_ids)
    assert set(plays(world, campaign_id)) == set(world.image_ids)


def test_progress_counts_rounds_retired_images_and_success(world: World) -> None:
    campaign_id = world.campaign(plays_wanted_per_image=1)
    first, second = world.add_players(2)
    won, lost = start(world, campaign_id, first), start(world, campaign_id, second)
    with world.database.session() as session:
        session.get_one(Round, won.id).outcome = "correct"
        session.get_one(Round, lost.id).outcome = "timeout"
    with world.database.session() as session:
        campaign = load(session, campaign_id)
        progress = campaign_progress(session, [campaign])[campaign_id]
    assert (progress.images_total, progress.images_retired, progress.rounds) == (3, 2, 2)
    assert (progress.plays_last_hour, progress.active_players) == (2, 2)
    assert progress.dnn_success_rate == 0.5


def test_the_default_campaign_is_created_active_and_repointed(world: World) -> None:
    with world.database.session() as session:
        image_set = session.get_one(ImageSet, world.image_set_id)
        model = session.get_one(DnnModel, world.model_id)
        campaign = service.ensure_default_campaign(session, image_set, model)
        assert (campaign.state, campaign.version) == ("active", 1)
        assert campaign.plays_wanted_per_image == service.DEFAULT_CAMPAIGN_PLAYS_WANTED
        assert service.ensure_default_campaign(session, image_set, model).version == 1
        service.change_state(session, campaign, "completed")  # an admin closed it: serve starts
        assert service.ensure_default_campaign(session, image_set, model).state == "completed"
        campaign.state = "active"
        other = DnnModel(name="m", version="2", architecture="a", weights_sha256="1" * 64)
        session.add(other)
        session.flush()
        campaign = service.ensure_default_campaign(session, image_set, other)
        versions = session.scalars(
            select(CampaignVersion.version).where(CampaignVersion.campaign_id == campaign.id)
        ).all()
    assert campaign.version == 2 and sorted(versions) == [1, 2]


def test_two_starts_racing_to_the_same_image_get_a_clear_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = world.campaign(plays_wanted_per_image=5)
    player = world.add_players(1)[0]
    first = start(world, campaign_id, player)
    with world.database.session() as session:  # what the loser of the race would have picked
        same_image = session.get(Image, first.image_id)
    monkeypatch.setattr(service, "pick_image", lambda *_args, **_kwargs: service.Pick(same_image))
    assert refusal(world, campaign_id, player) == "round_conflict"
    assert plays(world, campaign_id)[first.image_id] == 1  # the loser's claim was rolled back


def test_a_pilot_gets_maps_early_when_assignment_goes_depth_first(world: World) -> None:
    """30 valid plays (10 players, 3 rounds each, in turn) with a 5-round map minimum: depth
    first gives 6 maps; breadth first spreads the plays one or two per image and gives none."""
    world.add_images(27)
    rule = MapSettings(min_rounds=5)
    players = world.add_players(10)
    for order, maps in (("depth", 6), ("breadth", 0)):
        campaign_id = world.campaign(assignment_order=order)
        for _ in range(3):
            for player in players:
                with world.database.session() as session:
                    campaign = load(session, campaign_id)
                    new = game.start_round(
                        session, player, campaign, (1, 1), rule, 0, START_BOUND_S
                    )
                    round_ = session.get_one(Round, new.id)
                    round_.outcome, round_.n_points = "timeout", rule.min_points
        with world.database.session() as session:
            mapped = mapped_image_ids(session, campaign_id, rule)
            rounds = session.scalars(select(Round.image_id).where(Round.campaign_id == campaign_id))
            per_image = Counter(rounds)
        assert len(mapped) == maps, order
        assert sum(per_image.values()) == 30 and max(per_image.values()) <= (
            5 if order == "depth" else 2
        )


def test_depth_first_counts_only_valid_and_running_rounds(world: World) -> None:
    """An image is filled by valid rounds: one that ends empty makes room for another player."""
    campaign_id = world.campaign()
    first, second, third = world.add_players(3)
    filling = played(world, campaign_id, first).image_id
    empty = start(world, campaign_id, second)
    assert empty.image_id == filling  # the image on its way to a map, not a fresh one
    with world.database.session() as session:
        game.skip_round(session, empty.id, second, 0, RULE)
    assert plays(world, campaign_id)[filling] == 1
    assert start(world, campaign_id, third).image_id == filling


def set_counters(world: World, campaign_id: int, counters: dict[int, tuple[int, float]]) -> None:
    """Sets images' plays and shuffles (image id: (plays, shuffle))."""
    with world.database.session() as session:
        for image_id, (count, shuffle) in counters.items():
            session.execute(
                update(ImagePlays)
                .where(ImagePlays.campaign_id == campaign_id, ImagePlays.image_id == image_id)
                .values(plays=count, shuffle=shuffle)
            )


DRAWS = 160


def test_equals_are_drawn_at_random_at_each_new_round_and_reshuffled_when_taken(
    world: World,
) -> None:
    """Eight least-played images, their shuffles evenly spread (each follows an equal share of
    [0, 1)): 160 new rounds, each skipped (its play given back) and the shuffles spread again,
    draw every image, none near half the time (expected 20 each; the former fixed order, or
    always the level's first, draws one image 160 times). The image taken draws a new shuffle."""
    world.add_images(5)
    campaign_id = world.campaign(assignment_order="breadth")
    spread = {image: (0, k / 8) for k, image in enumerate(world.image_ids)}
    (player,) = world.add_players(1)
    drawn: Counter[int] = Counter()
    for _ in range(DRAWS):
        set_counters(world, campaign_id, spread)
        new = start(world, campaign_id, player)
        drawn[new.image_id] += 1
        with world.database.session() as session:
            reshuffled = session.get_one(ImagePlays, (campaign_id, new.image_id)).shuffle
            game.skip_round(session, new.id, player, 0, RULE)
            session.delete(session.get_one(Round, new.id))  # so the player may see it again
        assert reshuffled != spread[new.image_id][1] and 0 <= reshuffled < 1
    assert set(drawn) == set(world.image_ids), drawn
    assert max(drawn.values()) < DRAWS * 0.3, drawn


def test_depth_first_fills_toward_the_minimum_then_takes_the_least_played(world: World) -> None:
    """Below the map's minimum the most-played first, down to fresh images; then, at or past
    it, the least-played; equals in either order (drawn)."""
    a, b, c = world.image_ids
    d, e = world.add_images(2)
    campaign_id = world.campaign(assignment_order="depth", plays_wanted_per_image=10)
    below, at = RULE.min_rounds - 2, RULE.min_rounds
    set_counters(
        world,
        campaign_id,
        {a: (below, 0.2), b: (below, 0.8), c: (0, 0.5), d: (at, 0.9), e: (at, 0.1)},
    )
    (player,) = world.add_players(1)
    got = [played(world, campaign_id, player).image_id for _ in range(5)]
    assert set(got[:2]) == {a, b} and got[2] == c and set(got[3:]) == {d, e}


def work_of(connection: Connection, statement: str, parameters: object) -> int:
    """What running the statement reads. PostgreSQL: the counters' rows its plan reads (kept
    and filtered out, over every loop; a sort reads them all). SQLite: its virtual machine's
    steps (a seek and a few rows: some hundreds; a scan of the campaign: over ten per row)."""
    with connection.begin():  # run, its locks let go
        if connection.dialect.name == "postgresql":
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
            plan = connection.exec_driver_sql(explain, parameters).scalar_one()  # type: ignore[arg-type]
            return counters_read(plan[0]["Plan"])
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0

        raw = connection.connection.driver_connection
        raw.set_progress_handler(step, 1)  # type: ignore[union-attr]
        try:
            connection.exec_driver_sql(statement, parameters).all()  # type: ignore[arg-type]
        finally:
            raw.set_progress_handler(None, 1)  # type: ignore[union-attr]
        return steps


def counters_read(node: dict) -> int:
    """The rows of ``image_plays`` a PostgreSQL plan node and those under it read."""
    own = 0
    if node.get("Relation Name") == "image_plays":
        kept = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        own = kept * node["Actual Loops"]
    return own + sum(counters_read(child) for child in node.get("Plans", []))


IMAGES = 2000


@pytest.mark.parametrize("order", ["breadth", "depth"])
def test_a_new_round_reads_a_few_counters_of_thousands(
    world: World, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement that orders a campaign's counters in a new round reads the first open
    one from ``ix_image_plays_order``, in a range of plays bounded on both sides: none sorts
    the campaign's images or reads past its run, so a new round costs the same in a campaign of
    any size (``benchmarks/bench_assignment.py``)."""
    world.add_images(IMAGES)
    campaign_id = world.campaign(assignment_order=order)
    # Every image past where a run starts: a statement that read its run without both bounds
    # would read them all (breadth: each played once; depth: each at its minimum, so that
    # both of depth's runs are read).
    played_each = 1 if order == "breadth" else RULE.min_rounds
    with world.database.session() as session:
        session.execute(update(ImagePlays).values(plays=played_each))
    (player,) = world.add_players(1)
    engine = world.database.engine
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    ordering: list[tuple[str, object]] = []
    on_cursor = db._on_cursor  # where assignment's statements run (``InTransaction``)

    def keep(engine: Engine, connection: Any, sql: str, values: Any, read: Any) -> Any:
        if "FROM image_plays" in sql and "ORDER BY" in sql:
            ordering.append((sql, values))
        return on_cursor(engine, connection, sql, values, read)

    monkeypatch.setattr(db, "_on_cursor", keep)
    start(world, campaign_id, player)
    monkeypatch.undo()
    assert len(ordering) >= (4 if order == "depth" else 3)  # the draw among them
    most = 10 if engine.dialect.name == "postgresql" else 1000
    with engine.connect() as connection:
        work = [work_of(connection, statement, parameters) for statement, parameters in ordering]
    assert max(work) <= most, work


def test_the_order_runs_by_plays_and_each_run_narrows_before_a_candidate() -> None:
    """Hand-worked: breadth is one run, least-played first; depth fills toward the minimum
    (5 here), most-played first, then the least-played past it; before a candidate with 3
    plays, a run keeps the plays that come first in its order, and past 3, those after."""
    breadth = service._order_runs("breadth", wanted=10, min_rounds=5)
    depth = service._order_runs("depth", wanted=10, min_rounds=5)
    assert breadth == [service._Run(0, 10, most_first=False)]
    assert depth == [service._Run(0, 5, most_first=True), service._Run(5, 10, most_first=False)]
    assert service._order_runs("depth", wanted=3, min_rounds=5) == [
        service._Run(0, 3, most_first=True),
        service._Run(5, 3, most_first=False),  # empty: the quota comes before the minimum
    ]
    assert breadth[0].before(3) == service._Run(0, 3, most_first=False)
    assert depth[0].before(3) == service._Run(4, 5, most_first=True)
    assert depth[1].before(7) == service._Run(5, 7, most_first=False)
    # past a level whose free images others hold, the run goes on from the next
    assert breadth[0].past(3) == service._Run(4, 10, most_first=False)
    assert depth[0].past(3) == service._Run(0, 3, most_first=True)
