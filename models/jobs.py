"""Where incremental jobs (rollups, quality checks) have got to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, JSONType, UTCDateTime


class JobWatermark(Base):
    """The point up to which a job has processed its input, so re-runs resume there."""

    __tablename__ = "job_watermarks"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    watermark: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
