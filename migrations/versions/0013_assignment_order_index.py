"""Assignment's order from an index: each image's play counter gets a random ``shuffle`` in
[0, 1), and ``(campaign_id, plays, shuffle)`` is indexed, so that a new round draws among the
least-played images from the index instead of sorting every open image by a fresh ``random()``

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEX = "ix_image_plays_order"


def upgrade() -> None:
    # Every existing row draws its own value: PostgreSQL evaluates a volatile default per row
    # when it adds the column; SQLite cannot add a column with such a default, so the table is
    # copied (nothing refers to its rows) and each copied row takes the default.
    # In [0, 1) on both: SQLite's random() is a 64-bit integer (``clickme.core.db.RandomUnit``).
    sqlite = op.get_bind().dialect.name == "sqlite"
    draw = "(random() / 18446744073709551616.0 + 0.5)" if sqlite else "random()"
    with op.batch_alter_table("image_plays", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(
            sa.Column("shuffle", sa.Float(), server_default=sa.text(draw), nullable=False)
        )
    op.create_index(INDEX, "image_plays", ["campaign_id", "plays", "shuffle"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="image_plays")
    with op.batch_alter_table("image_plays") as batch:
        batch.drop_column("shuffle")
