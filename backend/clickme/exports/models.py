"""Export jobs: an export started from the admin console, run in the background, downloaded."""

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from clickme.core.db import Base
from clickme.core.jobs import JobColumns


class ExportJob(JobColumns, Base):
    """One export: its request, its state (queued, running, done, failed, cancelled, expired),
    its progress, and where its files are (a folder of its own under the data directory)."""

    __tablename__ = "export_jobs"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    folder: Mapped[str] = mapped_column(String(200))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
