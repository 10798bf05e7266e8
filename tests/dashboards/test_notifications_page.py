"""Notifications page: the outbox by status, channel and purpose; retrying dead rows is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.alerts.lifecycle import Subject, raise_alert, resolve
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    AuditEntry,
    Channel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    RuleKind,
    Severity,
    User,
)
from tests.dashboards.conftest import AppDatabase, empty_tables, no_exception, texts


@dataclass(frozen=True)
class Outbox:
    dead: int
    dead_of_resolved: int
    sent: int
    pending_webhook: int


def _row(alert: Alert, user: User, key: str, **values: object) -> Notification:
    values.setdefault("channel", Channel.EMAIL)
    values.setdefault("purpose", NotificationPurpose.NEW)
    return Notification(
        idempotency_key=key,
        alert_id=alert.id,
        recipient_id=user.id,
        address=f"{user.username}@example.org",
        subject=f"Subject {key}",
        next_attempt_at=utcnow() + timedelta(minutes=3),
        **values,
    )


@pytest.fixture
def outbox_rows(app_db: AppDatabase) -> Outbox:
    """Four outbox rows: dead, dead about a resolved alert, sent, a pending webhook."""
    empty_tables(app_db, Notification, AlertHistory, Alert)
    with app_db.session() as session:
        user = session.scalar(select(User).where(User.username == "caregiver1"))

        def alert(name: str) -> Alert:
            return raise_alert(
                session,
                kind=RuleKind.EVENT,
                severity=Severity.CRITICAL,
                subject=Subject("site", name, app_db.site_id),
                title=f"Flame {name}",
            ).alert

        live, over = alert("live"), alert("over")
        resolve(session, over.id, None, "cleared")
        rows = [
            _row(
                live,
                user,
                "dead",
                status=NotificationStatus.DEAD,
                attempts=5,
                last_error="SMTP 550 mailbox unavailable",
            ),
            _row(
                over,
                user,
                "dead-over",
                status=NotificationStatus.DEAD,
                attempts=5,
                last_error="SMTP timeout",
            ),
            _row(live, user, "sent", status=NotificationStatus.SENT, attempts=1, sent_at=utcnow()),
            _row(
                live,
                user,
                "webhook",
                channel=Channel.WEBHOOK,
                status=NotificationStatus.PENDING,
                attempts=2,
                last_error="HTTP 503",
            ),
        ]
        session.add_all(rows)
        session.commit()
        return Outbox(*(row.id for row in rows))


def _table(at):
    return next(frame.value for frame in at.dataframe if "Status" in frame.value.columns)


def test_operator_sees_counts_attempts_errors_and_next_attempt(
    open_app, outbox_rows: Outbox
) -> None:
    at = open_app("operator", page="notifications")
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dead (failed)"] == "2" and metrics["Sent"] == "1"
    assert metrics["Pending"] == "1" and metrics["Cancelled"] == "0"
    table = _table(at).set_index("No.")
    assert len(table) == 4
    webhook = table.loc[outbox_rows.pending_webhook]
    assert webhook["Channel"] == "Webhook" and webhook["Attempts"] == 2
    assert webhook["Last error"] == "HTTP 503" and webhook["Next attempt"] != ""
    assert table.loc[outbox_rows.sent, "Next attempt"] == ""
    assert table.loc[outbox_rows.dead, "Last error"] == "SMTP 550 mailbox unavailable"
    assert "Times are shown in Asia/Seoul time." in texts(at)


def test_filters_by_status_channel_and_purpose(open_app, outbox_rows: Outbox) -> None:
    at = open_app("operator", page="notifications")
    at.multiselect(key="notifications.statuses").select("dead").run()
    no_exception(at)
    assert set(_table(at)["No."]) == {outbox_rows.dead, outbox_rows.dead_of_resolved}
    at.multiselect(key="notifications.statuses").unselect("dead").run()
    at.multiselect(key="notifications.channels").select("webhook").run()
    assert _table(at)["No."].tolist() == [outbox_rows.pending_webhook]
    at.multiselect(key="notifications.purposes").select("report").run()
    no_exception(at)
    assert "No notifications match these filters" in texts(at)


def test_retry_turns_a_dead_row_pending_and_is_audited(
    open_app, app_db: AppDatabase, outbox_rows: Outbox
) -> None:
    operator = app_db.user("operator")
    at = open_app("operator", page="notifications")
    # Nothing chosen: said in words, nothing changes.
    at.button(key="notifications.retry_submit").click().run()
    no_exception(at)
    assert "Choose at least one dead notification" in texts(at)
    picker = at.multiselect(key="notifications.retry_ids")
    assert set(picker.options) and len(picker.options) == 2
    picker.select(outbox_rows.dead).select(outbox_rows.dead_of_resolved)
    at.button(key="notifications.retry_submit").click().run()
    no_exception(at)
    assert "Notifications queued again: 1." in texts(at)
    assert "their alert is resolved by now" in texts(at)
    with app_db.session() as session:
        retried = session.get(Notification, outbox_rows.dead)
        assert retried.status is NotificationStatus.PENDING and retried.attempts == 0
        assert session.get(Notification, outbox_rows.dead_of_resolved).status is (
            NotificationStatus.DEAD
        )
        assert session.get(Notification, outbox_rows.sent).status is NotificationStatus.SENT
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "notification.retry")
        ).all()
        assert [(e.actor_id, e.target_id) for e in entries] == [
            (operator.id, str(outbox_rows.dead))
        ]
        assert entries[0].details["attempts"] == 5
    # Only the one still dead is offered now.
    assert len(at.multiselect(key="notifications.retry_ids").options) == 1


def test_no_dead_notifications_says_so(open_app, app_db: AppDatabase) -> None:
    empty_tables(app_db, Notification)
    at = open_app("admin", page="notifications")
    no_exception(at)
    assert "No notifications yet." in texts(at)
    assert "No dead notifications: nothing to retry." in texts(at)
    assert not at.multiselect(key="notifications.statuses").value


def test_a_caregiver_cannot_open_the_outbox(open_app, outbox_rows: Outbox) -> None:
    at = open_app("caregiver1")
    try:
        at.switch_page("app_pages/notifications.py").run()
    except ValueError:
        return  # not even registered for this role
    assert "You do not have access" in texts(at)
    assert not at.dataframe and not at.metric
