"""Raw telemetry: one row per device, metric and timestamp."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Reading(Base):
    """One measured value; the primary key makes redelivered messages idempotent."""

    __tablename__ = "readings"
    __table_args__ = (
        # "Last N hours of a device" across its metrics.
        Index("ix_readings_device_id_ts", "device_id", "ts"),
    )

    # No foreign key to devices on purpose: this is the hot write path, and ingest
    # registers unknown devices (quarantined) before it writes their readings.
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    # Booleans (motion, door_open, bed_occupied) are stored as 0.0 / 1.0.
    value: Mapped[float] = mapped_column(Float)
