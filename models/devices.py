"""The device registry: what is installed where, and what it last said."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ColumnElement, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, StrEnumType, UTCDateTime
from models.enums import DeviceStatus


class Device(Base):
    """A sensor or actuator; its id is the {device} level of its MQTT topics."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"), index=True
    )
    # One of the contract's device types (core.contract); unknown devices have None.
    type: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    room: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[DeviceStatus] = mapped_column(
        StrEnumType(DeviceStatus, 16), default=DeviceStatus.UNKNOWN
    )
    # When `status` took its current value (the time of the message that changed it); None when
    # not known (a device registered before status changes were recorded). Heartbeats that
    # repeat the status leave it alone: "offline for N minutes" counts from it.
    status_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest time any message of the device was received; it never moves backwards.
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    battery: Mapped[int | None] = mapped_column(Integer)
    rssi: Mapped[int | None] = mapped_column(Integer)
    firmware: Mapped[str | None] = mapped_column(String(64))
    # Devices that spoke before an operator registered them: kept, but flagged.
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    mqtt_username: Mapped[str | None] = mapped_column(String(128), unique=True)
    credentials_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When an operator took the device out of service (None while in service). The row stays so
    # its status history, commands and past readings keep their device; its id is blocked too.
    decommissioned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def in_service() -> ColumnElement[bool]:
    """The clause for devices in service (not decommissioned); every "live" query filters on it."""
    return Device.decommissioned_at.is_(None)


class BlockedDevice(Base):
    """A device id an operator rejected: ingest dead-letters its messages instead of registering it.

    Kept apart from `devices` because a rejected device leaves the registry; the row remembers the
    decision so that the device does not come back to quarantine with its next message.
    """

    __tablename__ = "blocked_devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    blocked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
