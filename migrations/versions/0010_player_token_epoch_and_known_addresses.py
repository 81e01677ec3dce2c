"""Player tokens carry an epoch that forgetting bumps; staff sign-in addresses are remembered

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("players") as batch_op:
        batch_op.add_column(
            sa.Column("token_epoch", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "staff_known_addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("staff_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ip_hash", sa.String(64), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "ip_hash"),
    )


def downgrade() -> None:
    op.drop_table("staff_known_addresses")
    with op.batch_alter_table("players") as batch_op:
        batch_op.drop_column("token_epoch")
