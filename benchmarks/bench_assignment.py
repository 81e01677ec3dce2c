"""A new round's cost by the size of its campaign, on PostgreSQL and SQLite.

    .venv/bin/python benchmarks/bench_assignment.py [--sizes 1000 30000 300000]
        [--rounds 200] [--databases postgresql sqlite] [--postgres-admin-url URL]

For each database and size, a fresh database (PostgreSQL: a new one, dropped after; SQLite: a
temporary file), migrated, gets an image set of that many images (rows only, bulk inserted), a
campaign on it (breadth first, as the demo's, and depth first) and 40 players. Then the players
start rounds in turn, one at a time, each ended as it counts for the maps (as
``game.start_round`` is called by ``POST /api/rounds``: the rounds left in flight, the
assignment, the round's row), and the new round's wall time is read. Beside it, on the same
data, the statement assignment ran before it read its order from an index
(``ORDER BY plays, random() LIMIT 1`` over the campaign's open images; without the player's
history or the lock) is timed alone. A quarter of ImageNet is some
300,000 images.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))
from bench_load import POSTGRES_ADMIN_URL

from clickme.campaigns import service as campaigns
from clickme.campaigns.models import ImagePlays
from clickme.campaigns.schemas import CampaignCreate
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.core.migrate import upgrade
from clickme.game import service as game
from clickme.game.models import Round
from clickme.images.models import Image, ImageSet
from clickme.maps.aggregate import MapSettings
from clickme.players.models import Player
from clickme.scoring.tables import DnnModel

SCRATCH = "clickme_bench_assignment"
PLAYERS = 40
INSERT_CHUNK = 10_000
RULE = MapSettings()
START_BOUND_S = Settings.model_fields["round_start_bound_s"].default  # as a deployment's
FORMER = (  # the assignment's statement before this index, without its lock
    sa.select(ImagePlays.image_id)
    .join(Image, Image.id == ImagePlays.image_id)
    .where(
        ImagePlays.campaign_id == sa.bindparam("campaign"),
        ImagePlays.plays < sa.bindparam("wanted"),
        ImagePlays.retired_by_reliability.is_(False),
        Image.is_catch.is_(False),
    )
    .order_by(ImagePlays.plays, sa.func.random())
    .limit(1)
)


@contextmanager
def scratch_database(kind: str, admin_url: str) -> Iterator[Database]:
    """A fresh, migrated database of the kind, removed after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield from _migrated(f"sqlite:///{folder}/bench.db")
        return
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    drop = sa.text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
    with admin.connect() as connection:
        connection.execute(drop)
        connection.execute(sa.text(f'CREATE DATABASE "{SCRATCH}"'))
    try:
        yield from _migrated(admin_url.rsplit("/", 1)[0] + f"/{SCRATCH}")
    finally:
        with admin.connect() as connection:
            connection.execute(drop)
        admin.dispose()


def _migrated(url: str) -> Iterator[Database]:
    upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


def fill(database: Database, size: int) -> tuple[int, int, list[int]]:
    """An image set of ``size`` images (rows only), a model and the players: their ids."""
    with database.session() as session:
        image_set = ImageSet(name="bench")
        model = DnnModel(name="m", version="1", architecture="a", weights_sha256="0" * 64)
        players = [Player(display_name=f"p{i}") for i in range(PLAYERS)]
        session.add_all([image_set, model, *players])
        session.flush()
        ids = image_set.id, model.id, [player.id for player in players]
    rows = (
        {"image_set_id": ids[0], "sha256": f"{i:064x}", "file_name": f"{i}.jpg"}
        for i in range(size)
    )
    insert = sa.insert(Image).values(
        original_name="photo.jpg", width=100, height=80, synset="n01443537", class_index=1
    )
    with database.engine.begin() as connection, tqdm(total=size, desc="images", unit="") as bar:
        while chunk := [row for _, row in zip(range(INSERT_CHUNK), rows, strict=False)]:
            connection.execute(insert, chunk)
            bar.update(len(chunk))
    return ids


def open_campaign(database: Database, ids: tuple[int, int, list[int]], order: str) -> int:
    """An active campaign on the set, its counters made and the tables analysed."""
    with database.session() as session:
        body = CampaignCreate(
            name=order,
            slug=order,
            image_set_id=ids[0],
            model_id=ids[1],
            assignment_order=order,
            plays_wanted_per_image=1000,
        )
        campaign = campaigns.create_campaign(session, body)
        campaigns.change_state(session, campaign, "active")
        campaign_id = campaign.id
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return campaign_id


def timed_ms(action: Callable[[], object], repeats: int, desc: str) -> list[float]:
    times = []
    for _ in tqdm(range(repeats), desc=desc, leave=False):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def new_rounds_ms(database: Database, campaign_id: int, players: list[int], rounds: int) -> list:
    """Each new round's wall time, the players in turn, after as many untimed to warm up (the
    statements' caches); each round ended as it counts."""
    turn = iter(range(2 * rounds))

    def new_round() -> None:
        player = players[next(turn) % len(players)]
        with database.session() as session:
            campaign = campaigns.get_campaign(session, campaign_id)
            new = game.start_round(session, player, campaign, (1, 1), RULE, 0, START_BOUND_S)
            played = session.get_one(Round, new.id)
            played.outcome, played.n_points = "timeout", RULE.min_points

    timed_ms(new_round, rounds, "warming up")
    return timed_ms(new_round, rounds, "new rounds")


def former_statement_ms(database: Database, campaign_id: int, repeats: int) -> list[float]:
    parameters = {"campaign": campaign_id, "wanted": 1000}
    with database.engine.connect() as connection:
        return timed_ms(
            lambda: connection.execute(FORMER, parameters).first(), repeats, "former statement"
        )


def p50(times: list[float]) -> float:
    return statistics.median(times)


def p90(times: list[float]) -> float:
    return statistics.quantiles(times, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 30_000, 300_000])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--databases", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args()
    lines = [
        "| database | images | order | new round p50 / p90 ms | former statement alone p50 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    smallest: dict[tuple[str, str], float] = {}
    for kind in args.databases:
        for size in args.sizes:
            with scratch_database(kind, args.postgres_admin_url) as database:
                ids = fill(database, size)
                for order in ("breadth", "depth"):
                    campaign_id = open_campaign(database, ids, order)
                    rounds = new_rounds_ms(database, campaign_id, ids[2], args.rounds)
                    former = former_statement_ms(database, campaign_id, max(5, args.rounds // 10))
                    smallest.setdefault((kind, order), p50(rounds))
                    growth = p50(rounds) / smallest[kind, order]
                    lines.append(
                        f"| {kind} | {size} | {order} | {p50(rounds):.2f} / {p90(rounds):.2f} "
                        f"({growth:.2f}x the smallest) | {p50(former):.2f} |"
                    )
                    print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
