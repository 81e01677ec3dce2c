"""Campaigns: which images, which DNN, and the rules of the game."""

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clickme.core.db import Base, UTCDateTime, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="active")
    version: Mapped[int] = mapped_column(Integer, default=1)
    image_set_id: Mapped[int] = mapped_column(ForeignKey("image_sets.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("dnn_models.id"))
    top_k: Mapped[int] = mapped_column(Integer, default=5)
    time_limit_ms: Mapped[int] = mapped_column(Integer, default=7000)
    brush_radius: Mapped[float] = mapped_column(Float)
    brush_softness: Mapped[float] = mapped_column(Float)
    reveal_background: Mapped[str] = mapped_column(String(20))
    background_blur_sigma: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
