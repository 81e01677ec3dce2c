"""The assignment benchmark on a small campaign of each database: every round it times starts
and counts, the former statement runs on the same data, and the scratch database goes."""

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from benchmarks.bench_assignment import (
    SCRATCH,
    fill,
    former_statement_ms,
    new_rounds_ms,
    open_campaign,
    scratch_database,
)
from clickme.campaigns.models import ImagePlays
from clickme.game.models import Round
from tests.conftest import POSTGRES_ADMIN_URL


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_rounds_are_timed_on_a_campaign_of_the_size_asked(kind: str) -> None:
    with scratch_database(kind, POSTGRES_ADMIN_URL) as database:
        ids = fill(database, 120)
        campaign_id = open_campaign(database, ids, "depth")
        rounds = new_rounds_ms(database, campaign_id, ids[2], 6)
        former = former_statement_ms(database, campaign_id, 3)
        with database.session() as session:
            counters = session.scalar(select(func.count()).select_from(ImagePlays))
            played = session.scalar(select(func.sum(ImagePlays.plays)))
            ended = session.scalar(select(func.count()).where(Round.outcome == "timeout"))
    assert len(rounds) == 6 and len(former) == 3 and min(rounds + former) > 0
    assert counters == 120 and played == ended == 12  # the warm-up's rounds and the timed
    if kind == "postgresql":
        admin = sa.create_engine(POSTGRES_ADMIN_URL)
        with admin.connect() as connection:
            left = connection.scalar(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                {"name": SCRATCH},
            )
        admin.dispose()
        assert left == 0
