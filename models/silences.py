"""Silences: a resident away or in hospital, or a site or device under maintenance."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, StrEnumType, UTCDateTime


class SilenceScope(StrEnum):
    """What a silence covers: one resident (and their devices), a whole site, or one device."""

    RESIDENT = "resident"
    SITE = "site"
    DEVICE = "device"


class SilenceReason(StrEnum):
    """Why alerts are held."""

    AWAY = "away"
    HOSPITAL = "hospital"
    MAINTENANCE = "maintenance"
    OTHER = "other"


class Silence(Base):
    """Windowed alerts about the scope are held from `starts_at` until `ends_at` (or cancellation).

    Critical instant events (falls, panic, flame, smoke, gas) are never held. Exactly one of
    resident_id, site_id, device_id is set, the one `scope` names (core.silences checks it).
    """

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[SilenceScope] = mapped_column(StrEnumType(SilenceScope, 16))
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[str | None] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[str | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Always set: a silence nobody ends would hide a resident for good.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[SilenceReason] = mapped_column(StrEnumType(SilenceReason, 16))
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Ended early (or withdrawn before it began): the silence holds nothing from this time on.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    @property
    def effective_end(self) -> datetime:
        """When the silence stops holding alerts: its end, or its cancellation if earlier."""
        if self.cancelled_at is not None and self.cancelled_at < self.ends_at:
            return self.cancelled_at
        return self.ends_at
