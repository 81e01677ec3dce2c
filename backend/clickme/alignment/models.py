"""Alignment jobs: a model's alignment with a campaign's maps, asked for in the console."""

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from clickme.core.db import Base
from clickme.core.jobs import JobColumns


class AlignmentJob(JobColumns, Base):
    """One `clickme align` run in the background: its request, state, progress (images
    explained) and, once done, the result it stored (``AlignmentResult``)."""

    __tablename__ = "alignment_jobs"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    model_name: Mapped[str] = mapped_column(String(100))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
