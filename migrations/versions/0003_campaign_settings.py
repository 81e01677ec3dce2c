"""campaign settings, versions, image play counters, catch images

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The demo campaign never retires its images (campaigns.service.DEFAULT_CAMPAIGN_PLAYS_WANTED).
DEFAULT_CAMPAIGN_PLAYS_WANTED = 100_000
GAME_SETTINGS = (
    "image_set_id",
    "model_id",
    "top_k",
    "time_limit_ms",
    "brush_radius",
    "brush_softness",
    "reveal_background",
    "background_blur_sigma",
    "plays_wanted_per_image",
    "max_images_per_player",
    "catch_trial_share",
    "retire_at_reliability",
)


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite too): a batch copy of a referenced table would trip foreign keys.
    for column in (
        sa.Column("plays_wanted_per_image", sa.Integer(), server_default="10", nullable=False),
        sa.Column("max_images_per_player", sa.Integer(), nullable=True),
        sa.Column("catch_trial_share", sa.Float(), server_default="0", nullable=False),
        sa.Column("retire_at_reliability", sa.Float(), nullable=True),
        sa.Column("consent_text", sa.Text(), server_default="", nullable=False),
        sa.Column("instructions_text", sa.Text(), server_default="", nullable=False),
        sa.Column("completion_code", sa.String(length=100), nullable=True),
        sa.Column("screened_out_code", sa.String(length=100), nullable=True),
        sa.Column("completion_url", sa.String(length=2000), nullable=True),
    ):
        op.add_column("campaigns", column)
    op.add_column(
        "images", sa.Column("is_catch", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_index(
        "uq_rounds_campaign_player_image",
        "rounds",
        ["campaign_id", "player_id", "image_id"],
        unique=True,
    )
    op.create_table(
        "campaign_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_versions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff_users.id"],
            name=op.f("fk_campaign_versions_created_by_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_versions")),
        sa.UniqueConstraint(
            "campaign_id", "version", name=op.f("uq_campaign_versions_campaign_id")
        ),
    )
    op.create_table(
        "image_plays",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("plays", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_image_plays_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_plays_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "image_id", name=op.f("pk_image_plays")),
    )
    _fill_existing_campaigns()


def _fill_existing_campaigns() -> None:
    """Existing campaigns: a version snapshot for each version their rounds were played under
    (today's settings, the best known), and play counters from their rounds not skipped."""
    bind = op.get_bind()
    campaigns = sa.table(
        "campaigns",
        sa.column("id"),
        sa.column("slug"),
        sa.column("version"),
        *(sa.column(name) for name in GAME_SETTINGS),
    )
    rounds = sa.table(
        "rounds",
        sa.column("campaign_id"),
        sa.column("campaign_version"),
        sa.column("image_id"),
        sa.column("outcome"),
    )
    versions = sa.table(
        "campaign_versions",
        sa.column("campaign_id"),
        sa.column("version"),
        sa.column("settings", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    bind.execute(
        campaigns.update()
        .where(campaigns.c.slug == "default")
        .values(plays_wanted_per_image=DEFAULT_CAMPAIGN_PLAYS_WANTED)
    )
    now = datetime.now(UTC)
    for row in bind.execute(sa.select(campaigns)).mappings().all():
        played = bind.scalars(
            sa.select(rounds.c.campaign_version).where(rounds.c.campaign_id == row["id"]).distinct()
        ).all()
        settings = {name: row[name] for name in GAME_SETTINGS}
        for version in sorted({row["version"], *played}):
            bind.execute(
                versions.insert().values(
                    campaign_id=row["id"],
                    version=version,
                    settings=settings,
                    created_at=now,
                )
            )
    op.execute(
        """
        INSERT INTO image_plays (campaign_id, image_id, plays)
        SELECT c.id, i.id, (
            SELECT count(*) FROM rounds r
            WHERE r.campaign_id = c.id AND r.image_id = i.id
              AND (r.outcome IS NULL OR r.outcome <> 'skip'))
        FROM campaigns c JOIN images i ON i.image_set_id = c.image_set_id
        WHERE c.state IN ('active', 'paused')
        """
    )


def downgrade() -> None:
    op.drop_table("image_plays")
    op.drop_table("campaign_versions")
    op.drop_index("uq_rounds_campaign_player_image", table_name="rounds")
    op.drop_column("images", "is_catch")
    for name in (
        "completion_url",
        "screened_out_code",
        "completion_code",
        "instructions_text",
        "consent_text",
        "retire_at_reliability",
        "catch_trial_share",
        "max_images_per_player",
        "plays_wanted_per_image",
    ):
        op.drop_column("campaigns", name)
