"""player recruitment ids, IP hash and user agent; player flags and exclusions

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PLAYER_COLUMNS = (
    ("source", 10),
    ("external_id", 64),
    ("study_id", 64),
    ("session_id", 64),
    ("ip_hash", 64),
    ("user_agent", 500),
)


def upgrade() -> None:
    with op.batch_alter_table("players", schema=None) as batch_op:
        for name, length in PLAYER_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_players_source"), ["source", "external_id"]
        )
    op.create_table(
        "player_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_player_flags_player_id_players"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_player_flags")),
        sa.UniqueConstraint("player_id", "kind", name=op.f("uq_player_flags_player_id")),
    )
    op.create_table(
        "player_exclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("excluded_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_player_exclusions_player_id_players"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["excluded_by"],
            ["staff_users.id"],
            name=op.f("fk_player_exclusions_excluded_by_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_player_exclusions")),
        sa.UniqueConstraint("player_id", name=op.f("uq_player_exclusions_player_id")),
    )


def downgrade() -> None:
    op.drop_table("player_exclusions")
    op.drop_table("player_flags")
    with op.batch_alter_table("players", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_players_source"), type_="unique")
        for name, _length in reversed(PLAYER_COLUMNS):
            batch_op.drop_column(name)
