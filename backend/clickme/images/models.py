"""Image sets and their images."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from clickme.core.db import Base, UTCDateTime, utcnow

ORIGINAL_NAME_LENGTH = 500


class ImageSet(Base):
    __tablename__ = "image_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Image(Base):
    """One photo, stored in the data directory under its content hash."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("image_set_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_set_id: Mapped[int] = mapped_column(
        ForeignKey("image_sets.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(200))
    original_name: Mapped[str] = mapped_column(String(ORIGINAL_NAME_LENGTH))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    synset: Mapped[str] = mapped_column(String(9))
    class_index: Mapped[int] = mapped_column(Integer)
    # A catch trial: an image used to measure players (campaigns draw them by catch_trial_share).
    is_catch: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
