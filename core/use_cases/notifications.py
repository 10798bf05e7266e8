"""The notification outbox as operators see it: rows by status, channel and purpose, and retrying.

Only viewers who may manage notifications (operators, admins) see the outbox: it names every
recipient's messages. Retrying puts dead rows back in the queue through core.notify.outbox.requeue,
which touches dead rows only, so a message already sent is never sent again; each retried row is
written to the audit log with who asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.access import Permission, Viewer, acting_user, require
from core.notify.outbox import requeue
from models import (
    Alert,
    AlertStatus,
    Channel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    User,
)

NOTIFICATION_COLUMNS = [
    "id",
    "created_at",
    "status",
    "channel",
    "purpose",
    "recipient",
    "subject",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "last_error",
    "alert_id",
    "alert_title",
]
# Messages announcing an alert: stale once it is resolved (the resolved message says so instead).
_ANNOUNCING = (NotificationPurpose.NEW, NotificationPurpose.ESCALATION)


@dataclass(frozen=True)
class RetryResult:
    """What a retry did: rows queued again, and dead rows left alone because their alert is over."""

    requeued: list[int] = field(default_factory=list)
    skipped_resolved: list[int] = field(default_factory=list)


def list_notifications(
    session: Session,
    viewer: Viewer,
    statuses: Iterable[NotificationStatus | str] | None = None,
    channels: Iterable[Channel | str] | None = None,
    purposes: Iterable[NotificationPurpose | str] | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Outbox rows, newest first, optionally only these statuses, channels and purposes."""
    require(viewer, Permission.MANAGE_NOTIFICATIONS)
    query = (
        select(Notification, User.display_name, Alert.title)
        .outerjoin(User, User.id == Notification.recipient_id)
        .outerjoin(Alert, Alert.id == Notification.alert_id)
    )
    if statuses is not None:
        query = query.where(Notification.status.in_([NotificationStatus(s) for s in statuses]))
    if channels is not None:
        query = query.where(Notification.channel.in_([Channel(c) for c in channels]))
    if purposes is not None:
        query = query.where(Notification.purpose.in_([NotificationPurpose(p) for p in purposes]))
    rows = session.execute(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    ).all()
    records = [
        {
            "id": row.id,
            "created_at": row.created_at,
            "status": row.status.value,
            "channel": row.channel.value,
            "purpose": row.purpose.value,
            "recipient": name,
            "subject": row.subject,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at,
            "sent_at": row.sent_at,
            "last_error": row.last_error,
            "alert_id": str(row.alert_id) if row.alert_id else None,
            "alert_title": title,
        }
        for row, name, title in rows
    ]
    return pd.DataFrame.from_records(records, columns=NOTIFICATION_COLUMNS)


def status_counts(session: Session, viewer: Viewer) -> dict[NotificationStatus, int]:
    """How many outbox rows are in each status (every status, zero included)."""
    require(viewer, Permission.MANAGE_NOTIFICATIONS)
    counts = dict.fromkeys(NotificationStatus, 0)
    for status, count in session.execute(
        select(Notification.status, func.count()).group_by(Notification.status)
    ):
        counts[NotificationStatus(status)] = int(count)
    return counts


def retry_dead(session: Session, viewer: Viewer, notification_ids: Sequence[int]) -> RetryResult:
    """Queue dead notifications again (audited); others, and those of resolved alerts, untouched."""
    require(viewer, Permission.MANAGE_NOTIFICATIONS)
    user = acting_user(session, viewer)
    wanted = sorted({int(i) for i in notification_ids})
    if not wanted:
        return RetryResult()
    rows = session.execute(
        select(Notification, Alert.status)
        .outerjoin(Alert, Alert.id == Notification.alert_id)
        .where(Notification.id.in_(wanted), Notification.status == NotificationStatus.DEAD)
        .order_by(Notification.id)
        .with_for_update(of=Notification)
    ).all()
    result = RetryResult()
    for row, alert_status in rows:
        stale = row.purpose in _ANNOUNCING and alert_status == AlertStatus.RESOLVED
        (result.skipped_resolved if stale else result.requeued).append(row.id)
    if not result.requeued:
        return result
    previous = {row.id: (row.attempts, row.last_error) for row, _ in rows}
    requeue(session, result.requeued)  # the rows are locked: all of them are still dead
    for notification_id in result.requeued:
        attempts, last_error = previous[notification_id]
        audit.record(
            session,
            user,
            "notification.retry",
            "notification",
            notification_id,
            attempts=attempts,
            last_error=(last_error or "")[:500] or None,
        )
    for row, _ in rows:
        session.expire(row)  # updated in SQL: the loaded objects still say dead
    return result
