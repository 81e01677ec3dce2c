"""model evaluations: a model version's accuracy on an image set

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("image_set_id", sa.Integer(), nullable=False),
        sa.Column("top1", sa.Float(), nullable=False),
        sa.Column("top5", sa.Float(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_set_id"],
            ["image_sets.id"],
            name=op.f("fk_model_evaluations_image_set_id_image_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_evaluations")),
    )
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_evaluations_image_set_id"), ["image_set_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_evaluations_image_set_id"))
    op.drop_table("model_evaluations")
