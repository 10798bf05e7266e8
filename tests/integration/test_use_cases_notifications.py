"""core.use_cases.notifications: the outbox for operators only; dead rows retried, audited, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.access import AccessDenied, Viewer
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.use_cases import notifications as q
from models import (
    Alert,
    AuditEntry,
    Channel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Role,
    RuleKind,
    Severity,
)
from tests.factories import Factory

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


@dataclass
class Outbox:
    operator: Viewer
    caregiver: Viewer
    dead: int
    dead_resolved: int
    dead_resolved_notice: int
    sent: int
    held_telegram: int


def _alert(session: Session, name: str) -> Alert:
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("site", name, None),
        title=name,
        at=T0,
    ).alert


@pytest.fixture
def outbox(db_session: Session, factory: Factory) -> Outbox:
    operator = factory.user(Role.OPERATOR)
    caregiver = factory.user(Role.CAREGIVER)
    live, over = _alert(db_session, "live"), _alert(db_session, "over")
    lifecycle.resolve(db_session, over.id, None, "cleared", at=T0)
    made = []
    for key, alert, status, channel, purpose in (
        ("dead", live, NotificationStatus.DEAD, Channel.EMAIL, NotificationPurpose.NEW),
        ("dead-over", over, NotificationStatus.DEAD, Channel.EMAIL, NotificationPurpose.NEW),
        ("dead-notice", over, NotificationStatus.DEAD, Channel.EMAIL, NotificationPurpose.RESOLVED),
        ("sent", live, NotificationStatus.SENT, Channel.INBOX, NotificationPurpose.NEW),
        ("held", live, NotificationStatus.HELD, Channel.TELEGRAM, NotificationPurpose.ESCALATION),
    ):
        row = Notification(
            idempotency_key=f"{key}-{alert.id}",
            alert_id=alert.id,
            recipient_id=caregiver.id,
            channel=channel,
            address="somewhere",
            purpose=purpose,
            status=status,
            attempts=5 if status is NotificationStatus.DEAD else 1,
            last_error="boom" if status is NotificationStatus.DEAD else None,
            created_at=T0,
            next_attempt_at=T0,
        )
        db_session.add(row)
        db_session.flush()
        made.append(row.id)
    return Outbox(Viewer.of(operator), Viewer.of(caregiver), *made)


def _retry_audits(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "notification.retry")
        )
        or 0
    )


def test_caregivers_may_not_see_or_retry_the_outbox(db_session: Session, outbox: Outbox) -> None:
    for attempt in (
        lambda: q.list_notifications(db_session, outbox.caregiver),
        lambda: q.status_counts(db_session, outbox.caregiver),
        lambda: q.retry_dead(db_session, outbox.caregiver, [outbox.dead]),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    assert db_session.get(Notification, outbox.dead).status is NotificationStatus.DEAD


def test_list_filters_and_counts(db_session: Session, outbox: Outbox) -> None:
    everything = q.list_notifications(db_session, outbox.operator)
    assert len(everything) == 5
    assert list(everything.columns) == q.NOTIFICATION_COLUMNS
    dead = q.list_notifications(db_session, outbox.operator, statuses=["dead"])
    assert set(dead["id"]) == {outbox.dead, outbox.dead_resolved, outbox.dead_resolved_notice}
    assert set(dead["last_error"]) == {"boom"} and set(dead["attempts"]) == {5}
    telegram = q.list_notifications(db_session, outbox.operator, channels=[Channel.TELEGRAM])
    assert telegram["id"].tolist() == [outbox.held_telegram]
    resolved = q.list_notifications(db_session, outbox.operator, purposes=["resolved"])
    assert resolved["id"].tolist() == [outbox.dead_resolved_notice]
    assert resolved["alert_title"].tolist() == ["over"]
    counts = q.status_counts(db_session, outbox.operator)
    assert counts[NotificationStatus.DEAD] == 3 and counts[NotificationStatus.HELD] == 1
    assert counts[NotificationStatus.CANCELLED] == 0 and len(counts) == len(NotificationStatus)


def test_retry_requeues_dead_rows_once_and_audits_each(db_session: Session, outbox: Outbox) -> None:
    result = q.retry_dead(
        db_session,
        outbox.operator,
        [outbox.dead, outbox.dead_resolved, outbox.dead_resolved_notice, outbox.sent],
    )
    # The resolved notice is still worth sending; a "new alert" about a resolved alert is not.
    assert result.requeued == [outbox.dead, outbox.dead_resolved_notice]
    assert result.skipped_resolved == [outbox.dead_resolved]
    for notification_id in result.requeued:
        row = db_session.get(Notification, notification_id)
        assert row.status is NotificationStatus.PENDING and row.attempts == 0
    assert db_session.get(Notification, outbox.dead_resolved).status is NotificationStatus.DEAD
    sent = db_session.get(Notification, outbox.sent)
    assert sent.status is NotificationStatus.SENT and sent.attempts == 1
    entries = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "notification.retry").order_by(AuditEntry.id)
    ).all()
    assert [int(e.target_id) for e in entries] == result.requeued
    assert {e.actor_id for e in entries} == {outbox.operator.user_id}
    assert entries[0].details == {"attempts": 5, "last_error": "boom"}

    # Again: nothing is dead any more, nothing happens, nothing more is audited.
    again = q.retry_dead(db_session, outbox.operator, [outbox.dead, outbox.dead_resolved_notice])
    assert again.requeued == [] and again.skipped_resolved == []
    assert _retry_audits(db_session) == 2
    assert q.retry_dead(db_session, outbox.operator, []).requeued == []


def test_a_deactivated_operator_cannot_retry(
    db_session: Session, factory: Factory, outbox: Outbox
) -> None:
    gone = factory.user(Role.OPERATOR)
    viewer = Viewer.of(gone)
    gone.active = False
    db_session.flush()
    with pytest.raises(AccessDenied):
        q.retry_dead(db_session, viewer, [outbox.dead])
    assert db_session.get(Notification, outbox.dead).status is NotificationStatus.DEAD
    assert _retry_audits(db_session) == 0
