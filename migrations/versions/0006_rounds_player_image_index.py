"""An index for a player's first round on an image (the maps' valid rounds)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_rounds_player_image", "rounds", ["player_id", "image_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_rounds_player_image", table_name="rounds")
