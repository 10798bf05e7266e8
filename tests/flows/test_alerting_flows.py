"""The alerting flows under Prefect: windowed rules open and auto-resolve, the sweeper delivers
and escalates, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from core import registry, users
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.seed import DEFAULT_ROUTE
from flows import runtime
from flows.alerting import alert_rules_flow
from flows.notifications import notifications_flow
from models import (
    Alert,
    AlertRule,
    AlertStatus,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Reading,
    RuleKind,
    ScopeType,
    Severity,
)
from tests.flows.conftest import FlowDatabase

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def seed(db: FlowDatabase) -> dict[str, int]:
    """A resident with a wearable, a caregiver on duty and a supervisor, a heart-rate rule."""
    with db.session() as session, session.begin():
        site = registry.create_site(session, "alertsite", "Alert site", "Asia/Seoul")
        resident = registry.create_resident(session, site, "Lee", room="12")
        registry.add_device(
            session,
            device_id="al-wear",
            site_id=site.id,
            device_type="wearable",
            resident_id=resident.id,
        )
        nurse = users.create_user(
            session, username="nurse", password="correct-horse-battery", role="caregiver"
        )
        boss = users.create_user(
            session, username="boss", password="correct-horse-battery", role="caregiver"
        )
        users.assign(session, nurse, resident, tier=1)
        users.assign(session, boss, resident, tier=2)
        rule = AlertRule(
            name="High heart rate",
            kind=RuleKind.THRESHOLD,
            severity=Severity.WARNING,
            scope_type=ScopeType.SITE,
            site_id=site.id,
            params={
                "metric": "heart_rate",
                "op": ">",
                "value": 120,
                "for_minutes": 5,
                "hysteresis": 5,
            },
            route=DEFAULT_ROUTE,
            auto_resolve=True,
        )
        session.add(rule)
        session.flush()
        return {"resident": resident.id, "nurse": nurse.id, "boss": boss.id, "rule": rule.id}


def heart_rate(db: FlowDatabase, start: datetime, minutes: int, value: float) -> None:
    with db.session() as session, session.begin():
        session.execute(
            insert(Reading),
            [
                {
                    "device_id": "al-wear",
                    "metric": "heart_rate",
                    "ts": start + timedelta(seconds=30 * i),
                    "value": value,
                }
                for i in range(minutes * 2)
            ],
        )


def test_windowed_rule_opens_then_auto_resolves(flows_on: FlowDatabase) -> None:
    ids = seed(flows_on)
    heart_rate(flows_on, NOW - timedelta(minutes=10), 10, 135.0)
    summary = alert_rules_flow(now=NOW)
    assert summary["opened"] == 1
    assert alert_rules_flow(now=NOW)["opened"] == 0  # a re-run changes nothing
    heart_rate(flows_on, NOW + timedelta(seconds=10), 5, 80.0)
    assert alert_rules_flow(now=NOW + timedelta(minutes=5))["resolved"] == 1
    with flows_on.session() as session:
        alert = session.scalar(select(Alert))
        assert alert.status is AlertStatus.RESOLVED and alert.resolved_by is None
        assert alert.resident_id == ids["resident"] and alert.rule_id == ids["rule"]
        queued = {(n.purpose, n.status) for n in session.scalars(select(Notification))}
    # Resolved before anyone was told: the queued messages are called off, not followed by
    # a "resolved" message about an alert nobody heard of.
    assert queued == {(NotificationPurpose.NEW, NotificationStatus.CANCELLED)}


def test_sweeper_delivers_then_escalates_unacknowledged_alerts(flows_on: FlowDatabase) -> None:
    ids = seed(flows_on)
    # A session of the flows process: it carries the settings, so the alert queues its
    # notifications, as in every process.
    with runtime.runtime().session() as session:
        rule = session.get(AlertRule, ids["rule"])
        lifecycle.raise_alert(
            session,
            kind=RuleKind.THRESHOLD,
            severity=Severity.WARNING,
            subject=Subject(
                "resident", str(ids["resident"]), "alertsite", ids["resident"], "al-wear"
            ),
            title="High heart rate",
            rule=rule,
            at=NOW,
        )
    first = notifications_flow(now=NOW + timedelta(seconds=5))
    assert first["escalated"] == 0
    with flows_on.session() as session:
        inbox = session.scalars(select(Notification).where(Notification.channel == "inbox")).all()
        assert [(n.recipient_id, n.status) for n in inbox] == [
            (ids["nurse"], NotificationStatus.SENT)
        ]
    # Nobody acknowledged within the route's 5 minutes: the supervisor is told.
    later = notifications_flow(now=NOW + timedelta(minutes=6))
    assert later["escalated"] == 1
    with flows_on.session() as session:
        boss_inbox = session.scalars(
            select(Notification).where(
                Notification.recipient_id == ids["boss"], Notification.channel == "inbox"
            )
        ).all()
        assert [(n.purpose, n.status) for n in boss_inbox] == [
            (NotificationPurpose.ESCALATION, NotificationStatus.SENT)
        ]
    # Commands: no broker configured here, so none are dispatched and none are lost.
    assert later["commands"] == {"sent": 0, "expired": 0, "failed": 0}
