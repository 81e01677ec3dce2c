"""campaign settings against empty and lazy play: assignment order, effort for completion,
unwinnable images left out; an image's winnability

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "assignment_order", sa.String(length=10), server_default="breadth", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("min_valid_rounds_for_completion", sa.Integer(), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "leave_out_unwinnable", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    with op.batch_alter_table("image_plays", schema=None) as batch_op:
        batch_op.add_column(sa.Column("winnable", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_plays", schema=None) as batch_op:
        batch_op.drop_column("winnable")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("leave_out_unwinnable")
        batch_op.drop_column("min_valid_rounds_for_completion")
        batch_op.drop_column("assignment_order")
