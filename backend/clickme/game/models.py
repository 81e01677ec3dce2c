"""Rounds and the painted points of each round (one row per batch, points packed)."""

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from clickme.core.db import Base, UTCDateTime, utcnow


class Round(Base):
    __tablename__ = "rounds"
    # A player never gets the same image twice in a campaign, but as a repeat.
    __table_args__ = (
        Index(
            "uq_rounds_campaign_player_image",
            "campaign_id",
            "player_id",
            "image_id",
            unique=True,
            sqlite_where=text("NOT is_repeat"),
            postgresql_where=text("NOT is_repeat"),
        ),
        # A player's first round on an image, across campaigns (the maps' valid rounds).
        Index("ix_rounds_player_image", "player_id", "image_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    campaign_version: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("dnn_models.id"))
    model_version: Mapped[str] = mapped_column(String(100))
    # Created (the photo assigned); the clock starts at shown_at, when the player sees it.
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    score: Mapped[int] = mapped_column(Integer, default=0)
    solved_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    n_points: Mapped[int] = mapped_column(Integer, default=0)
    pointer_type: Mapped[str | None] = mapped_column(String(10), nullable=True)
    viewport_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    viewport_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A replay of a photo the player has seen in the campaign (``repeat_when_exhausted``): it
    # holds no play and counts nowhere (``game.outcomes.COUNTED``).
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class PointBatch(Base):
    """A batch of points: little-endian float32 x, float32 y, int32 t per point, in order."""

    __tablename__ = "point_batches"
    __table_args__ = (UniqueConstraint("round_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    n_points: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_ms: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
