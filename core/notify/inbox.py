"""The in-app inbox: a user's inbox notifications, unread count, marking read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.timeutil import ensure_utc, utcnow
from models import Channel as ChannelKind
from models import Notification, NotificationStatus

# Inbox rows are never held; cancelled ones were called off before anyone saw them.
_VISIBLE = (NotificationStatus.PENDING, NotificationStatus.SENDING, NotificationStatus.SENT)


def inbox_items(
    session: Session, user_id: int, limit: int = 50, unread_only: bool = False
) -> list[Notification]:
    """The user's own inbox notifications, newest first (only theirs: enforced here)."""
    query = select(Notification).where(
        Notification.recipient_id == user_id,
        Notification.channel == ChannelKind.INBOX,
        Notification.status.in_(_VISIBLE),
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    return list(session.scalars(query))


def unread_count(session: Session, user_id: int) -> int:
    """How many of the user's inbox notifications are unread."""
    count = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.recipient_id == user_id,
            Notification.channel == ChannelKind.INBOX,
            Notification.status.in_(_VISIBLE),
            Notification.read_at.is_(None),
        )
    )
    return int(count or 0)


def mark_read(
    session: Session, user_id: int, notification_ids: list[int], now: datetime | None = None
) -> int:
    """Mark the user's own inbox notifications read; others' ids are ignored."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.id.in_(notification_ids),
            Notification.recipient_id == user_id,
            Notification.channel == ChannelKind.INBOX,
            Notification.read_at.is_(None),
        )
        .values(read_at=ensure_utc(now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
