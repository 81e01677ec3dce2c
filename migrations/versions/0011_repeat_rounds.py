"""Repeat rounds: a campaign may let a player who has seen every image play them again
(``campaigns.repeat_when_exhausted``, on for the demo campaign); such rounds are marked
(``rounds.is_repeat``), hold no play and may repeat an image

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEX = "uq_rounds_campaign_player_image"
COLUMNS = ["campaign_id", "player_id", "image_id"]


def upgrade() -> None:
    # Plain ADD and DROP COLUMN (SQLite has both): a batch copy of the table would break the
    # rows that refer to it.
    op.add_column(
        "campaigns",
        sa.Column("repeat_when_exhausted", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        sa.text(
            "UPDATE campaigns SET repeat_when_exhausted = :on WHERE slug = 'default'"
        ).bindparams(on=True)
    )
    op.add_column(
        "rounds", sa.Column("is_repeat", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    # A player still never gets an image twice in a campaign, but as a repeat.
    op.drop_index(INDEX, table_name="rounds")
    where = sa.text("NOT is_repeat")
    op.create_index(
        INDEX, "rounds", COLUMNS, unique=True, sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    # Repeats cannot be kept under the full unique index: they leave with their points.
    repeats = "SELECT id FROM rounds WHERE is_repeat"
    op.execute(f"DELETE FROM point_batches WHERE round_id IN ({repeats})")
    op.execute("DELETE FROM rounds WHERE is_repeat")
    op.drop_index(INDEX, table_name="rounds")
    op.create_index(INDEX, "rounds", COLUMNS, unique=True)
    op.drop_column("rounds", "is_repeat")
    op.drop_column("campaigns", "repeat_when_exhausted")
