"""Campaigns: which images, which DNN, the rules of the game, their versions and image quotas."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from clickme.core.db import Base, RandomUnit, UTCDateTime, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    image_set_id: Mapped[int] = mapped_column(ForeignKey("image_sets.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("dnn_models.id"))
    top_k: Mapped[int] = mapped_column(Integer, default=5)
    time_limit_ms: Mapped[int] = mapped_column(Integer, default=7000)
    brush_radius: Mapped[float] = mapped_column(Float)
    brush_softness: Mapped[float] = mapped_column(Float)
    reveal_background: Mapped[str] = mapped_column(String(20))
    background_blur_sigma: Mapped[float] = mapped_column(Float)
    plays_wanted_per_image: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    max_images_per_player: Mapped[int | None] = mapped_column(Integer, nullable=True)
    catch_trial_share: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    retire_at_reliability: Mapped[float | None] = mapped_column(Float, nullable=True)
    # "depth": fill images up to a map's minimum of valid rounds before opening new ones;
    # "breadth": least-played first. Campaigns made before this setting keep breadth.
    assignment_order: Mapped[str] = mapped_column(
        String(10), default="depth", server_default="breadth"
    )
    # Valid rounds a participant needs for the completion code (null: half the images per
    # player, rounded up).
    min_valid_rounds_for_completion: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Leave out of assignment the images the DNN does not get even on the whole photo.
    leave_out_unwinnable: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # A player who has seen every image may play them again, as repeats that count nowhere.
    repeat_when_exhausted: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    consent_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    instructions_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    completion_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    screened_out_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    completion_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignVersion(Base):
    """The game rules a campaign had from one version on (rounds are played by these)."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )


class ImagePlays(Base):
    """An image's reserved plays in a campaign: its rounds not skipped, finished or in flight."""

    __tablename__ = "image_plays"
    # Assignment's order read from an index: by plays, then equals drawn by their shuffle.
    __table_args__ = (Index("ix_image_plays_order", "campaign_id", "plays", "shuffle"),)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    plays: Mapped[int] = mapped_column(Integer, default=0)
    # The image's place among those with as many plays, in [0, 1): drawn at random by the
    # database as its row is made and again at each play taken, so that assignment draws among
    # equals from the index (``campaigns.service._drawn``).
    shuffle: Mapped[float] = mapped_column(Float, server_default=RandomUnit())
    # The image's corrected split-half value when last measured, on how many valid rounds.
    reliability: Mapped[float | None] = mapped_column(Float, nullable=True)
    reliability_rounds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Retired before its play count because its reliability reached the campaign's target.
    retired_by_reliability: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Whether the campaign's DNN gets the image in its top-k on the whole photo (null: not
    # measured yet).
    winnable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
