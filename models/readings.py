"""Raw telemetry: one row per device, metric and timestamp."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, only_on


class Reading(Base):
    """One measured value; the primary key makes redelivered messages idempotent."""

    __tablename__ = "readings"
    __table_args__ = (
        # One index serves both uniqueness and "the last N hours of a device" (all its metrics,
        # or one: a device has at most a handful). A second index would double the write cost.
        PrimaryKeyConstraint("device_id", "ts", "metric"),
        # Rollups, data-quality checks, retention and reports read "every reading between two
        # times". A BRIN index (a few pages per million rows, next to nothing per insert, since
        # readings arrive roughly in time order) spares them a scan of the whole table. Pages
        # not yet summarized are always read, so autosummarize has autovacuum summarize each
        # page range as soon as it fills instead of at the table's next vacuum.
        only_on(
            "postgresql",
            Index(
                "ix_readings_ts_brin",
                "ts",
                postgresql_using="brin",
                postgresql_with={"autosummarize": "on"},
            ),
        ),
    )

    # No foreign key to devices on purpose: this is the hot write path, and ingest
    # registers unknown devices (quarantined) before it writes their readings.
    device_id: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    # Booleans (motion, door_open, bed_occupied) are stored as 0.0 / 1.0.
    value: Mapped[float] = mapped_column(Float)
