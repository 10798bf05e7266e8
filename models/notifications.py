"""The notification outbox: one row per alert, recipient, channel and purpose."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, JSONType, StrEnumType, UTCDateTime
from models.enums import Channel, NotificationPurpose, NotificationStatus


class Notification(Base):
    """A message to deliver; written in the same transaction as the alert change."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique: the same alert/recipient/channel/purpose/tier is never queued (or sent) twice.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    alert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[Channel] = mapped_column(StrEnumType(Channel, 16))
    address: Mapped[str | None] = mapped_column(String(500))
    purpose: Mapped[NotificationPurpose] = mapped_column(StrEnumType(NotificationPurpose, 16))
    status: Mapped[NotificationStatus] = mapped_column(
        StrEnumType(NotificationStatus, 16), default=NotificationStatus.PENDING
    )
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
