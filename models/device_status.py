"""The history of each device's connection status: one row per change, not per heartbeat."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, StrEnumType, UTCDateTime
from models.enums import DeviceStatus


class StatusChangeReason(StrEnum):
    """What told ingest about the change."""

    # The device's status topic. A last will is published by the broker on that same topic
    # with the same payload, so the two cannot be told apart.
    STATUS = "status"


class DeviceStatusChange(Base):
    """A device's status became `status` at `at` (the time ingest received the message).

    Written by ingest in the transaction that stores the status, only when it differs from the
    device's previous status at that time; the rules backtest and the seeded history judge
    "offline for N minutes" from these rows.
    """

    __tablename__ = "device_status_changes"
    # A redelivered status message (same device, same receive time) is not a second change.
    __table_args__ = (UniqueConstraint("device_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    status: Mapped[DeviceStatus] = mapped_column(StrEnumType(DeviceStatus, 16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[StatusChangeReason] = mapped_column(
        StrEnumType(StatusChangeReason, 16), default=StatusChangeReason.STATUS
    )
    firmware: Mapped[str | None] = mapped_column(String(64))
