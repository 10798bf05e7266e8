"""The notification outbox on both backends: who is told through what, quiet hours, idempotency,
resolution notices, and escalation along the route."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import users
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.db import session_info
from core.errors import ConflictError
from core.notify import inbox, outbox
from core.notify.escalation import escalate_due
from core.notify.links import (
    AckLinkExpired,
    AckLinkInvalid,
    AckLinkStale,
    acknowledge_with_link,
    verify_ack_token,
)
from core.rules.engine import evaluate_rules
from core.rules.params import validate_params
from core.settings import Settings
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    AlertRule,
    AlertStatus,
    CaregiverAssignment,
    Channel,
    ContactChannel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Reading,
    Resident,
    Role,
    RuleKind,
    Severity,
    Site,
    User,
)
from tests.factories import Factory

# 2026-11-22 09:31 in Seoul.
T0 = datetime(2026, 11, 22, 0, 31, tzinfo=UTC)
ROUTE = [
    {"tier": 1, "after_minutes": 0, "channels": ["inbox", "email", "webhook"]},
    {"tier": 2, "after_minutes": 5, "channels": ["inbox", "telegram"]},
]


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users are made by the dozen here; argon2 at full strength only slows the tests."""
    monkeypatch.setattr(users, "hash_password", lambda password: "not-a-real-hash")


@pytest.fixture
def installed(db_session: Session, settings: Settings) -> Settings:
    """The test's session carries these settings, so alert changes queue notifications."""
    db_session.info.update(session_info(settings))
    return settings


def contact(session: Session, user: User, channel: Channel, address: str, **kw: Any) -> None:
    session.add(ContactChannel(user_id=user.id, channel=channel, address=address, **kw))
    session.flush()


# The channels `reachable` gives a user, with the inbox everyone has.
REACHABLE = frozenset({Channel.INBOX, Channel.EMAIL, Channel.TELEGRAM, Channel.WEBHOOK})


def reachable(session: Session, user: User) -> User:
    """E-mail, Telegram and a webhook besides the inbox every user has."""
    contact(session, user, Channel.EMAIL, f"{user.username}@example.org")
    contact(session, user, Channel.TELEGRAM, str(1000 + user.id))
    contact(session, user, Channel.WEBHOOK, f"http://127.0.0.1:9/hook/{user.username}")
    return user


def rule(session: Session, severity: Severity = Severity.CRITICAL, route: Any = None) -> AlertRule:
    row = AlertRule(
        name="Fall",
        kind=RuleKind.EVENT,
        params={"event_types": ["fall_detected"]},
        severity=severity,
        route=ROUTE if route is None else route,
    )
    session.add(row)
    session.flush()
    return row


class Home:
    """A site with one resident, a caregiver on duty, a supervisor and operators."""

    def __init__(self, session: Session, factory: Factory) -> None:
        self.site = factory.site()
        self.resident = factory.resident(self.site, name="김영자", room="103")
        self.caregiver = reachable(session, factory.user(residents=(self.resident,)))
        self.supervisor = reachable(session, factory.user())
        users.assign(session, self.supervisor, self.resident, tier=2)
        self.operator = reachable(session, factory.user(Role.OPERATOR, site_id=self.site.id))
        other_site = factory.site()
        self.elsewhere = factory.user(Role.OPERATOR, site_id=other_site.id)
        session.flush()


def raise_fall(
    session: Session,
    home: Home,
    rule_: AlertRule | None,
    severity: Severity = Severity.CRITICAL,
    at: datetime = T0,
    resident: Resident | None = None,
) -> Alert:
    who = resident or home.resident
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=severity,
        subject=Subject("resident", str(who.id), home.site.id, who.id, "dev-fall"),
        title="Fall detected",
        details={"event_type": "fall_detected"},
        rule=rule_,
        at=at,
    ).alert


def rows(session: Session, alert: Alert, **where: Any) -> list[Notification]:
    query = select(Notification).where(Notification.alert_id == alert.id)
    for name, value in where.items():
        query = query.where(getattr(Notification, name) == value)
    return list(session.scalars(query.order_by(Notification.id)))


def who_how(notifications: list[Notification]) -> set[tuple[int | None, Channel]]:
    return {(n.recipient_id, n.channel) for n in notifications}


def test_new_alert_goes_to_tier_one_through_route_channels_and_inbox(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    new = rows(db_session, alert)
    c = home.caregiver.id
    # The route names inbox, e-mail and webhook for tier 1: not Telegram, not the supervisor.
    assert who_how(new) == {(c, Channel.INBOX), (c, Channel.EMAIL), (c, Channel.WEBHOOK)}
    assert {n.status for n in new} == {NotificationStatus.PENDING}
    assert {n.purpose for n in new} == {NotificationPurpose.NEW}
    assert all(n.next_attempt_at == T0 for n in new)
    assert alert.next_escalation_at == T0 + timedelta(minutes=5)
    email = next(n for n in new if n.channel is Channel.EMAIL)
    assert email.address == f"{home.caregiver.username}@example.org"
    assert "Since: 2026-11-22 09:31 KST" in (email.body or "")
    assert "김영자, room 103" in (email.subject or "")
    link = email.payload["ack_url"]
    token = link.split("ack=", 1)[1]
    assert verify_ack_token(installed, token, T0) == (alert.id, home.caregiver.id, 0)
    assert email.payload["facts"]["severity"] == "critical"


def test_channels_are_route_and_enabled_contacts(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    db_session.execute(
        ContactChannel.__table__.update()
        .where(ContactChannel.user_id == home.caregiver.id, ContactChannel.channel == "webhook")
        .values(enabled=False)
    )
    alert = raise_fall(db_session, home, rule(db_session))
    assert {n.channel for n in rows(db_session, alert)} == {Channel.INBOX, Channel.EMAIL}


def test_without_a_rule_every_enabled_contact_is_used(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, None)
    assert {n.channel for n in rows(db_session, alert)} == REACHABLE
    # The default route: supervisor after 5 minutes.
    assert alert.next_escalation_at == T0 + timedelta(minutes=5)


def test_korean_caregiver_reads_korean(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    home.caregiver.language = "ko"
    alert = raise_fall(db_session, home, rule(db_session))
    email = rows(db_session, alert, channel=Channel.EMAIL)[0]
    assert email.subject == "[긴급] 낙상 감지 — 김영자 (103호)"
    assert "발생 시각: 2026-11-22 09:31 KST" in (email.body or "")


@pytest.mark.parametrize("severity", [Severity.WARNING, Severity.CRITICAL])
def test_device_alert_without_resident_goes_to_the_sites_operators(
    db_session: Session, factory: Factory, installed: Settings, severity: Severity
) -> None:
    home = Home(db_session, factory)
    everywhere = factory.user(Role.OPERATOR)
    # Even critical, a silent device is equipment: not the caregivers on duty.
    alert = lifecycle.raise_alert(
        db_session,
        kind=RuleKind.DEVICE_OFFLINE,
        severity=severity,
        subject=Subject("device", "dev-x", home.site.id, None, "dev-x"),
        title="Device offline",
        at=T0,
    ).alert
    recipients = {n.recipient_id for n in rows(db_session, alert)}
    assert recipients == {home.operator.id, everywhere.id}
    assert "device dev-x" in (rows(db_session, alert)[0].subject or "")


def test_resident_without_caregivers_goes_to_operators(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alone = factory.resident(home.site, name="Alone")
    alert = raise_fall(db_session, home, rule(db_session), resident=alone)
    assert {n.recipient_id for n in rows(db_session, alert)} == {home.operator.id}


def test_quiet_hours_hold_non_critical_but_never_critical(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    home.caregiver.quiet_start, home.caregiver.quiet_end = time(22, 0), time(7, 0)
    late = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)  # 23:00 in Seoul
    warning = raise_fall(
        db_session, home, rule(db_session, Severity.WARNING), Severity.WARNING, late
    )
    by_channel = {n.channel: n for n in rows(db_session, warning)}
    morning = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)  # 07:00 in Seoul
    assert by_channel[Channel.EMAIL].status is NotificationStatus.HELD
    assert by_channel[Channel.EMAIL].next_attempt_at == morning
    assert by_channel[Channel.WEBHOOK].status is NotificationStatus.HELD
    # The inbox makes no sound: it is there when they look.
    assert by_channel[Channel.INBOX].status is NotificationStatus.PENDING

    second = factory.resident(home.site)
    users.assign(db_session, home.caregiver, second)
    critical = raise_fall(db_session, home, rule(db_session), Severity.CRITICAL, late, second)
    made = rows(db_session, critical, recipient_id=home.caregiver.id)
    assert {n.channel for n in made} == {Channel.INBOX, Channel.EMAIL, Channel.WEBHOOK}
    assert {n.status for n in made} == {NotificationStatus.PENDING}
    assert all(n.next_attempt_at == late for n in made)


def test_quiet_hours_follow_the_users_own_timezone(
    db_session: Session, factory: Factory, settings: Settings
) -> None:
    home = Home(db_session, factory)
    home.caregiver.quiet_start, home.caregiver.quiet_end = time(22, 0), time(7, 0)
    home.caregiver.timezone = "Europe/London"
    alert = raise_fall(db_session, home, rule(db_session, Severity.WARNING), Severity.WARNING)
    late = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)  # 23:00 Seoul, 14:00 London: not quiet
    made = outbox.queue_for_alert(db_session, alert, "new", settings=settings, now=late)
    assert {n.status for n in made} == {NotificationStatus.PENDING}


def test_queueing_twice_adds_nothing(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    before = len(rows(db_session, alert))
    assert before == 3
    assert (
        outbox.queue_for_alert(db_session, alert, NotificationPurpose.NEW, settings=installed) == []
    )
    assert len(rows(db_session, alert)) == before
    assert len({n.idempotency_key for n in rows(db_session, alert)}) == before
    # A repeat of the same fall counts up; it does not notify again.
    raise_fall(db_session, home, db_session.get(AlertRule, alert.rule_id))
    assert len(rows(db_session, alert)) == before


def test_resolved_goes_to_everyone_notified_and_calls_off_the_waiting(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    escalate_due(db_session, T0 + timedelta(minutes=6), settings=installed)
    for n in rows(db_session, alert):
        if n.channel is not Channel.WEBHOOK:
            n.status = NotificationStatus.SENT
    stuck = rows(db_session, alert, channel=Channel.WEBHOOK)[0]
    stuck.status = NotificationStatus.PENDING  # webhook failing: never reached anyone
    db_session.flush()
    lifecycle.resolve(db_session, alert.id, None, at=T0 + timedelta(minutes=8))
    resolved = rows(db_session, alert, purpose=NotificationPurpose.RESOLVED)
    c, s = home.caregiver.id, home.supervisor.id
    assert who_how(resolved) == {
        (c, Channel.INBOX),
        (c, Channel.EMAIL),
        (s, Channel.INBOX),
        (s, Channel.TELEGRAM),
    }
    assert all("ack=" not in (n.body or "") for n in resolved)
    db_session.refresh(stuck)
    assert stuck.status is NotificationStatus.CANCELLED
    # Resolving again changes nothing.
    assert outbox.queue_for_alert(db_session, alert, "resolved", settings=installed) == []


def test_reopened_alert_is_news_again(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    lifecycle.resolve(db_session, alert.id, home.caregiver, at=T0 + timedelta(minutes=1))
    lifecycle.reopen(db_session, alert.id, home.caregiver, at=T0 + timedelta(minutes=2))
    new = rows(db_session, alert, purpose=NotificationPurpose.NEW)
    assert len(new) == 6
    assert alert.next_escalation_at == T0 + timedelta(minutes=7)


def escalations(session: Session, alert: Alert) -> list[Notification]:
    return rows(session, alert, purpose=NotificationPurpose.ESCALATION)


def test_unacknowledged_alert_escalates_along_the_route(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    route = [*ROUTE, {"tier": 3, "after_minutes": 15}]
    alert = raise_fall(db_session, home, rule(db_session, route=route))
    assert escalate_due(db_session, T0 + timedelta(minutes=4), settings=installed) == 0
    assert escalations(db_session, alert) == []

    at = T0 + timedelta(minutes=5, seconds=30)
    assert escalate_due(db_session, at, settings=installed) == 1
    s = home.supervisor.id
    assert who_how(escalations(db_session, alert)) == {(s, Channel.INBOX), (s, Channel.TELEGRAM)}
    assert alert.escalation_level == 2
    assert alert.next_escalation_at == at + timedelta(minutes=10)
    assert "nobody has acknowledged" in (escalations(db_session, alert)[0].body or "")
    # Again at the same time: nothing more is due.
    assert escalate_due(db_session, at, settings=installed) == 0

    # Beyond the assigned tiers: the operators, through every channel they have.
    assert escalate_due(db_session, T0 + timedelta(minutes=16), settings=installed) == 1
    op = {n.channel for n in escalations(db_session, alert) if n.recipient_id == home.operator.id}
    assert op == REACHABLE
    assert alert.escalation_level == 3
    assert alert.next_escalation_at is None
    assert escalate_due(db_session, T0 + timedelta(hours=5), settings=installed) == 0
    actions = db_session.scalars(
        select(AlertHistory.action).where(AlertHistory.alert_id == alert.id)
    ).all()
    assert actions.count("escalated") == 2


def test_acknowledged_or_resolved_alerts_never_escalate(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    acked = raise_fall(db_session, home, rule(db_session))
    lifecycle.acknowledge(db_session, acked.id, home.caregiver, at=T0 + timedelta(minutes=1))
    other = factory.resident(home.site)
    users.assign(db_session, home.caregiver, other)
    resolved = raise_fall(db_session, home, rule(db_session), resident=other)
    lifecycle.resolve(db_session, resolved.id, None, at=T0 + timedelta(minutes=1))
    # Even with a stale escalation time left behind, status decides.
    db_session.execute(
        Alert.__table__.update()
        .values(next_escalation_at=T0 + timedelta(minutes=5))
        .where(Alert.id.in_([acked.id, resolved.id]))
    )
    assert escalate_due(db_session, T0 + timedelta(hours=1), settings=installed) == 0
    count = db_session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.purpose == NotificationPurpose.ESCALATION)
    )
    assert count == 0


def test_dead_notifications_are_listed_and_can_be_requeued(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    email = rows(db_session, alert, channel=Channel.EMAIL)[0]
    email.status, email.attempts, email.last_error = NotificationStatus.DEAD, 10, "smtp down"
    db_session.flush()
    assert email.id in {n.id for n in outbox.dead_notifications(db_session)}
    assert outbox.requeue(db_session, [email.id], now=T0) == 1
    db_session.refresh(email)
    assert (email.status, email.attempts) == (NotificationStatus.PENDING, 0)


def test_site_timezone_is_used_when_the_resident_has_none(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    site = factory.site(timezone="Europe/Berlin")
    resident = factory.resident(site, name="Hans", room="7")
    factory.user(residents=(resident,))
    assert db_session.get(Site, site.id) is not None
    alert = lifecycle.raise_alert(
        db_session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("resident", str(resident.id), site.id, resident.id, None),
        title="Fall detected",
        at=T0,
    ).alert
    assert "Since: 2026-11-22 01:31 CET" in (rows(db_session, alert)[0].body or "")


def test_one_click_link_acknowledges_as_its_recipient(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    link = rows(db_session, alert, channel=Channel.EMAIL)[0].payload["ack_url"]
    token = link.split("ack=", 1)[1]
    acked = acknowledge_with_link(db_session, installed, token, now=T0 + timedelta(minutes=2))
    assert acked.status is AlertStatus.ACKNOWLEDGED
    assert acked.acknowledged_by == home.caregiver.id
    assert acked.next_escalation_at is None
    assert escalate_due(db_session, T0 + timedelta(hours=1), settings=installed) == 0
    with pytest.raises(AckLinkExpired):
        acknowledge_with_link(db_session, installed, token, now=T0 + timedelta(days=2))
    home.caregiver.active = False
    with pytest.raises(AckLinkInvalid):
        acknowledge_with_link(db_session, installed, token, now=T0 + timedelta(minutes=3))


def ack_token_for(session: Session, alert: Alert, user: User) -> str:
    """The token of the newest e-mail's one-click link to `user` about `alert`."""
    emails = rows(session, alert, channel=Channel.EMAIL, recipient_id=user.id)
    link = max(emails, key=lambda n: n.id).payload["ack_url"]
    return link.split("ack=", 1)[1]


def test_a_link_from_before_a_resolve_and_reopen_does_not_acknowledge_the_new_round(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    old_token = ack_token_for(db_session, alert, home.caregiver)
    lifecycle.resolve(db_session, alert.id, home.operator, at=T0 + timedelta(minutes=1))
    with pytest.raises(ConflictError):  # resolved: nothing to acknowledge
        acknowledge_with_link(db_session, installed, old_token, now=T0 + timedelta(minutes=2))
    lifecycle.reopen(db_session, alert.id, home.operator, at=T0 + timedelta(minutes=3))
    with pytest.raises(AckLinkStale) as raised:
        acknowledge_with_link(db_session, installed, old_token, now=T0 + timedelta(minutes=4))
    assert raised.value.message_key == "notify.link.stale"
    assert alert.status is AlertStatus.OPEN
    # The reopened round's own link works.
    new_token = ack_token_for(db_session, alert, home.caregiver)
    assert new_token != old_token
    acked = acknowledge_with_link(db_session, installed, new_token, now=T0 + timedelta(minutes=5))
    assert acked.status is AlertStatus.ACKNOWLEDGED


def test_a_link_stops_working_once_its_caregiver_is_unassigned(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    token = ack_token_for(db_session, alert, home.caregiver)
    db_session.execute(
        delete(CaregiverAssignment).where(CaregiverAssignment.user_id == home.caregiver.id)
    )
    with pytest.raises(AckLinkStale):
        acknowledge_with_link(db_session, installed, token, now=T0 + timedelta(minutes=2))
    assert alert.status is AlertStatus.OPEN
    assert alert.acknowledged_by is None


def test_inbox_shows_only_the_users_own_items(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    mine = inbox.inbox_items(db_session, home.caregiver.id)
    assert [n.alert_id for n in mine] == [alert.id]
    assert inbox.inbox_items(db_session, home.supervisor.id) == []
    assert inbox.unread_count(db_session, home.caregiver.id) == 1
    # Someone else's id is ignored.
    assert inbox.mark_read(db_session, home.supervisor.id, [mine[0].id]) == 0
    assert inbox.mark_read(db_session, home.caregiver.id, [mine[0].id], now=T0) == 1
    assert inbox.unread_count(db_session, home.caregiver.id) == 0


def test_a_failure_while_queueing_never_loses_the_alert(
    db_session: Session, factory: Factory, installed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(db_session, factory)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(outbox, "queue_for_alert", broken)
    alert = raise_fall(db_session, home, rule(db_session))
    db_session.flush()
    assert db_session.get(Alert, alert.id) is not None
    assert rows(db_session, alert) == []


def test_bad_timezones_fall_back_instead_of_failing(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    home.caregiver.timezone = "Mars/Olympus"
    home.caregiver.quiet_start, home.caregiver.quiet_end = time(22, 0), time(7, 0)
    home.resident.timezone = "Nowhere/Land"
    alert = raise_fall(db_session, home, rule(db_session, Severity.WARNING), Severity.WARNING)
    assert "Since: 2026-11-22 09:31 KST" in (rows(db_session, alert)[0].body or "")


def fall_again(
    session: Session, home: Home, rule_: AlertRule | None, at: datetime, event_id: int
) -> lifecycle.Raised:
    """A new fall event of the same resident, as the instant path raises it."""
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("resident", str(home.resident.id), home.site.id, home.resident.id, "f"),
        title="Fall detected",
        details={"event_type": "fall_detected"},
        rule=rule_,
        at=at,
        occurrence=lifecycle.Occurrence("fall_detected", event_id, "dev-fall", at, {"g": 3.1}),
        renotify=True,
    )


def test_the_resolver_is_not_told_of_their_own_resolve(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alert = raise_fall(db_session, home, rule(db_session))
    escalate_due(db_session, T0 + timedelta(minutes=6), settings=installed)
    for n in rows(db_session, alert):
        n.status = NotificationStatus.SENT
    db_session.flush()
    lifecycle.resolve(db_session, alert.id, home.caregiver, at=T0 + timedelta(minutes=8))
    resolved = rows(db_session, alert, purpose=NotificationPurpose.RESOLVED)
    assert {n.recipient_id for n in resolved} == {home.supervisor.id}


def test_escalation_goes_to_someone_not_told_yet(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alone = factory.resident(home.site, name="Alone")
    admin = factory.user(Role.ADMIN)
    alert = raise_fall(db_session, home, rule(db_session), resident=alone)
    # Nobody is assigned to her: the operators are told first...
    assert {n.recipient_id for n in rows(db_session, alert)} == {home.operator.id}
    # ...so the escalation must not be the same operator again.
    escalate_due(db_session, T0 + timedelta(minutes=6), settings=installed)
    assert {n.recipient_id for n in escalations(db_session, alert)} == {admin.id}


def test_escalation_with_nobody_new_left_tells_the_tier_again(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    alone = factory.resident(home.site, name="Alone")
    alert = raise_fall(db_session, home, rule(db_session), resident=alone)
    escalate_due(db_session, T0 + timedelta(minutes=6), settings=installed)
    # Better the same operator twice than nobody at all.
    assert {n.recipient_id for n in escalations(db_session, alert)} == {home.operator.id}


def test_a_repeat_notifies_everyone_told_and_restarts_the_escalation(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    fall_rule = rule(db_session)
    alert = fall_again(db_session, home, fall_rule, T0, event_id=1).alert
    escalate_due(db_session, T0 + timedelta(minutes=6), settings=installed)
    assert alert.escalation_level == 2
    again = T0 + timedelta(minutes=8)
    raised = fall_again(db_session, home, fall_rule, again, event_id=2)
    assert raised.renotified and not raised.created and raised.alert.id == alert.id
    repeat = rows(db_session, alert, purpose=NotificationPurpose.REPEAT)
    c, s = home.caregiver.id, home.supervisor.id
    # The caregiver through the first tier's channels; the supervisor already told, as before.
    assert who_how(repeat) == {
        (c, Channel.INBOX),
        (c, Channel.EMAIL),
        (c, Channel.WEBHOOK),
        (s, Channel.INBOX),
        (s, Channel.TELEGRAM),
    }
    assert {n.status for n in repeat} == {NotificationStatus.PENDING}
    assert all(n.next_attempt_at == again for n in repeat)
    assert (alert.escalation_level, alert.next_escalation_at) == (1, again + timedelta(minutes=5))
    # Queueing the same occurrence again adds nothing; the same event again is not counted.
    assert outbox.queue_for_alert(db_session, alert, "repeat", settings=installed) == []
    assert fall_again(db_session, home, fall_rule, again, event_id=2).duplicate
    assert alert.occurrences == 2
    # Nobody answers the repeat either: the supervisor is told again that it waits.
    assert escalate_due(db_session, T0 + timedelta(minutes=14), settings=installed) == 1
    supervisor_escalations = [n for n in escalations(db_session, alert) if n.recipient_id == s]
    assert len(supervisor_escalations) == 4  # inbox and Telegram, twice
    assert {n.recipient_id for n in escalations(db_session, alert)} == {s}
    # A third fall: its own messages again.
    fall_again(db_session, home, fall_rule, T0 + timedelta(minutes=15), event_id=3)
    assert len(rows(db_session, alert, purpose=NotificationPurpose.REPEAT)) == 10


def test_a_repeat_without_renotify_stays_silent(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    fall_rule = rule(db_session)
    alert = raise_fall(db_session, home, fall_rule)
    lifecycle.acknowledge(db_session, alert.id, home.caregiver, at=T0 + timedelta(minutes=1))
    assert raise_fall(db_session, home, fall_rule, at=T0 + timedelta(minutes=2)) is alert
    assert alert.occurrences == 2
    assert alert.status is AlertStatus.ACKNOWLEDGED and alert.next_escalation_at is None
    assert rows(db_session, alert, purpose=NotificationPurpose.REPEAT) == []


def test_a_sustained_critical_condition_is_not_renotified_every_tick(
    db_session: Session, factory: Factory, installed: Settings
) -> None:
    home = Home(db_session, factory)
    wearable = factory.device("wearable", resident=home.resident)
    high = AlertRule(
        name="Very high heart rate",
        kind=RuleKind.THRESHOLD,
        params=validate_params(
            RuleKind.THRESHOLD,
            {"metric": "heart_rate", "op": ">", "value": 150, "for_minutes": 2, "hysteresis": 5},
        ),
        severity=Severity.CRITICAL,
        site_id=home.site.id,
        auto_resolve=False,
        route=ROUTE,
    )
    db_session.add(high)
    db_session.flush()
    now = utcnow().replace(second=0, microsecond=0)

    def beats(start: datetime, minutes: int, value: float) -> None:
        db_session.add_all(
            Reading(
                device_id=wearable.id,
                metric="heart_rate",
                ts=start + timedelta(seconds=30 * i),
                value=value,
            )
            for i in range(minutes * 2)
        )
        db_session.flush()

    beats(now - timedelta(minutes=4), 4, 170.0)
    for minute in range(4):  # every minute's tick sees the same episode
        beats(now + timedelta(minutes=minute), 1, 170.0)
        evaluate_rules(db_session, now + timedelta(minutes=minute + 1))
    beats(now + timedelta(minutes=4), 2, 80.0)  # calm, then a new episode: counted, not paged
    evaluate_rules(db_session, now + timedelta(minutes=6))
    beats(now + timedelta(minutes=6), 4, 175.0)
    evaluate_rules(db_session, now + timedelta(minutes=10))
    alert = db_session.scalar(select(Alert).where(Alert.rule_id == high.id))
    assert alert is not None and alert.occurrences == 2
    purposes = {n.purpose for n in rows(db_session, alert)}
    assert purposes <= {NotificationPurpose.NEW, NotificationPurpose.ESCALATION}
    assert len(rows(db_session, alert, purpose=NotificationPurpose.NEW)) == 3
