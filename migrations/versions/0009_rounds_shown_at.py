"""rounds.shown_at: the round's clock starts when its photo is on the player's screen

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True))
    # Rounds played before: their clock started when they were created.
    op.execute("UPDATE rounds SET shown_at = started_at")


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("shown_at")
