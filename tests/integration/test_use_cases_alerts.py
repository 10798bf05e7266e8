"""core.use_cases.alerts: who sees which alert, acting through the lifecycle, the viewer's inbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import AccessDenied, Viewer
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.errors import ConflictError, NotFoundError
from core.use_cases import alerts as q
from models import (
    AlertStatus,
    AuditEntry,
    Channel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Resident,
    Role,
    RuleKind,
    Severity,
)
from tests.factories import Factory

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


@dataclass
class World:
    caregiver: Viewer
    operator: Viewer
    about_mine: str
    my_device: str
    about_other: str
    other_device: str
    site_quality: str
    kitchen: str


def _raise(session, kind, severity, subject, minutes, details=None) -> str:
    raised = lifecycle.raise_alert(
        session,
        kind=kind,
        severity=severity,
        subject=subject,
        title=f"{kind.value} {subject.id}",
        details=details or {},
        at=T0 + timedelta(minutes=minutes),
    )
    return str(raised.alert.id)


@pytest.fixture
def world(db_session: Session, factory: Factory) -> World:
    site = factory.site()
    mine, other = factory.resident(site, name="Mine"), factory.resident(site, name="Other")
    nurse = factory.user(Role.CAREGIVER, residents=(mine,), site_id=site.id)
    boss = factory.user(Role.OPERATOR, site_id=site.id)
    my_motion = factory.device("motion_sensor", resident=mine)
    other_motion = factory.device("motion_sensor", resident=other)
    flame = factory.device("flame_detector", site=site)
    s = site.id
    offline = RuleKind.DEVICE_OFFLINE
    return World(
        caregiver=Viewer.of(nurse),
        operator=Viewer.of(boss),
        about_mine=_raise(
            db_session,
            RuleKind.EVENT,
            Severity.CRITICAL,
            Subject("resident", str(mine.id), s, mine.id, None),
            10,
            {"event_type": "fall_detected"},
        ),
        my_device=_raise(
            db_session,
            offline,
            Severity.WARNING,
            Subject("device", my_motion.id, s, None, my_motion.id),
            0,
            {"silent_minutes": 40},
        ),
        about_other=_raise(
            db_session,
            RuleKind.EVENT,
            Severity.CRITICAL,
            Subject("resident", str(other.id), s, other.id, None),
            5,
            {"event_type": "button_pressed"},
        ),
        other_device=_raise(
            db_session,
            offline,
            Severity.WARNING,
            Subject("device", other_motion.id, s, None, other_motion.id),
            1,
        ),
        site_quality=_raise(
            db_session,
            RuleKind.DATA_QUALITY,
            Severity.INFO,
            Subject("site", s, s),
            2,
            {"suite": "readings", "failed": 2, "evaluated": 9},
        ),
        kitchen=_raise(
            db_session,
            RuleKind.EVENT,
            Severity.CRITICAL,
            Subject("device", flame.id, s, None, flame.id),
            3,
            {"event_type": "flame_detected"},
        ),
    )


def test_caregiver_sees_their_residents_their_devices_and_their_sites_alerts(
    db_session: Session, world: World
) -> None:
    frame = q.list_alerts(db_session, world.caregiver, statuses=None)
    # Their resident's fall and motion sensor, and the site's own alerts (the kitchen flame, the
    # data quality check); not the other resident's alert nor the other resident's device.
    assert frame["id"].tolist() == [
        world.kitchen,  # critical, +3
        world.about_mine,  # critical, +10
        world.my_device,  # warning
        world.site_quality,  # info
    ]
    device_row = frame.set_index("id").loc[world.my_device]
    assert device_row["resident"] == "Mine"  # the device's resident
    counts = q.alert_counts(db_session, world.caregiver)
    assert (counts.open, counts.acknowledged, counts.critical_unresolved) == (4, 0, 2)


def test_operator_sees_every_alert_by_severity_then_age(db_session: Session, world: World) -> None:
    frame = q.list_alerts(db_session, world.operator)
    assert frame["id"].tolist() == [
        world.kitchen,  # critical, opened at +3 min
        world.about_other,  # critical, +5
        world.about_mine,  # critical, +10
        world.my_device,  # warning, +0
        world.other_device,  # warning, +1
        world.site_quality,  # info
    ]
    only_critical = q.list_alerts(db_session, world.operator, severities=["critical"])
    assert set(only_critical["severity"]) == {"critical"} and len(only_critical) == 3
    assert q.alert_counts(db_session, world.operator).open == 6


@pytest.mark.parametrize("which", ["about_other", "other_device"])
def test_caregiver_cannot_see_or_act_on_others_alerts(
    db_session: Session, world: World, which: str
) -> None:
    alert_id = getattr(world, which)
    for attempt in (
        lambda: q.check_alert(db_session, world.caregiver, alert_id),
        lambda: q.alert_detail(db_session, world.caregiver, alert_id),
        lambda: q.acknowledge_alert(db_session, world.caregiver, alert_id, "mine?"),
        lambda: q.resolve_alert(db_session, world.caregiver, alert_id, "done"),
    ):
        with pytest.raises(AccessDenied) as caught:
            attempt()
        assert caught.value.key == "errors.access_denied"
    detail = q.alert_detail(db_session, world.operator, alert_id)
    assert detail.status is AlertStatus.OPEN
    assert not db_session.scalar(
        select(AuditEntry.id).where(
            AuditEntry.target_id == alert_id, AuditEntry.action != "alert.open"
        )
    )


def test_missing_and_malformed_alerts(db_session: Session, world: World) -> None:
    with pytest.raises(NotFoundError):
        q.check_alert(db_session, world.operator, uuid.uuid4())
    with pytest.raises(NotFoundError):
        q.check_alert(db_session, world.operator, "not-a-uuid")
    # A caregiver is not told whether an alert that is not theirs exists.
    with pytest.raises(AccessDenied):
        q.check_alert(db_session, world.caregiver, uuid.uuid4())


def test_acknowledge_then_resolve_then_reopen_is_audited(db_session: Session, world: World) -> None:
    alert = q.acknowledge_alert(db_session, world.caregiver, world.my_device, "  checking  ")
    assert alert.status is AlertStatus.ACKNOWLEDGED and alert.ack_note == "checking"
    assert alert.acknowledged_by == world.caregiver.user_id
    with pytest.raises(q.AlertNoteError) as missing:
        q.resolve_alert(db_session, world.caregiver, world.my_device, "   ")
    assert missing.value.key == "errors.alerts.note_required"
    with pytest.raises(q.AlertNoteError) as long:
        q.resolve_alert(db_session, world.caregiver, world.my_device, "x" * 2001)
    assert long.value.key == "errors.alerts.note_too_long"
    assert alert.status is AlertStatus.ACKNOWLEDGED
    q.resolve_alert(db_session, world.caregiver, world.my_device, "battery replaced")
    assert alert.status is AlertStatus.RESOLVED and alert.resolve_note == "battery replaced"
    with pytest.raises(ConflictError) as resolved:
        q.acknowledge_alert(db_session, world.caregiver, world.my_device)
    assert resolved.value.key == "errors.alert_resolved"
    detail = q.alert_detail(db_session, world.caregiver, world.my_device)
    assert detail.can_reopen and detail.resolved_by == detail.acknowledged_by
    q.reopen_alert(db_session, world.caregiver, world.my_device, "still silent")
    assert alert.status is AlertStatus.OPEN

    history = q.alert_history(db_session, world.caregiver, world.my_device)
    assert history["action"].tolist() == ["opened", "acknowledged", "resolved", "reopened"]
    assert history["note"].tolist()[1:] == ["checking", "battery replaced", "still silent"]
    audited = db_session.execute(
        select(AuditEntry.action, AuditEntry.actor_id).where(
            AuditEntry.target_id == world.my_device
        )
    ).all()
    me = world.caregiver.user_id
    assert {
        ("alert.acknowledge", me),
        ("alert.resolved", me),
        ("alert.reopen", me),
    } <= set(audited)


def test_reopen_is_refused_when_a_newer_alert_is_open(db_session: Session, world: World) -> None:
    q.resolve_alert(db_session, world.operator, world.kitchen, "false alarm: toast")
    flame_device = q.alert_detail(db_session, world.operator, world.kitchen).device_id
    assert flame_device is not None
    newer = _raise(
        db_session,
        RuleKind.EVENT,
        Severity.CRITICAL,
        Subject("device", flame_device, None, None, flame_device),
        30,
        {"event_type": "flame_detected"},  # the same kind of event: the same dedupe key
    )
    assert newer != world.kitchen
    assert not q.alert_detail(db_session, world.operator, world.kitchen).can_reopen
    with pytest.raises(ConflictError) as caught:
        q.reopen_alert(db_session, world.operator, world.kitchen)
    assert caught.value.key == "errors.alert_newer_open"


def test_detail_describes_the_finding_and_hides_delivery_errors_from_caregivers(
    db_session: Session, world: World
) -> None:
    db_session.add(
        Notification(
            idempotency_key=f"test:{world.about_mine}",
            alert_id=uuid.UUID(world.about_mine),
            recipient_id=world.caregiver.user_id,
            channel=Channel.EMAIL,
            address="nurse@example.org",
            purpose=NotificationPurpose.NEW,
            status=NotificationStatus.DEAD,
            attempts=5,
            last_error="SMTP 550 mailbox unavailable",
        )
    )
    db_session.flush()
    mine = q.alert_detail(db_session, world.caregiver, world.about_mine, language="ko")
    assert mine.what == "낙상 감지" and mine.resident_name == "Mine"
    assert mine.timezone == "Asia/Seoul"
    assert mine.notifications["status"].tolist() == ["dead"]
    assert mine.notifications["last_error"].isna().all()
    seen = q.alert_detail(db_session, world.operator, world.about_mine)
    assert seen.notifications["last_error"].tolist() == ["SMTP 550 mailbox unavailable"]
    quality = q.alert_detail(db_session, world.operator, world.site_quality)
    assert quality.what == "Suite readings: 2 of 9 checks failed"
    assert quality.resident_name is None


def test_inbox_is_the_viewers_own(db_session: Session, factory: Factory, world: World) -> None:
    def message(user_id: int, key: str) -> Notification:
        row = Notification(
            idempotency_key=key,
            alert_id=uuid.UUID(world.about_mine),
            recipient_id=user_id,
            channel=Channel.INBOX,
            address="inbox",
            purpose=NotificationPurpose.NEW,
            status=NotificationStatus.SENT,
            subject=f"message {key}",
        )
        db_session.add(row)
        db_session.flush()
        return row

    mine = message(world.caregiver.user_id, "inbox-mine")
    theirs = message(world.operator.user_id, "inbox-theirs")
    frame = q.inbox(db_session, world.caregiver)
    assert frame["id"].tolist() == [mine.id]
    assert q.inbox_unread(db_session, world.caregiver) == 1
    # Someone else's message id is ignored.
    assert q.mark_inbox_read(db_session, world.caregiver, [mine.id, theirs.id]) == 1
    assert q.inbox_unread(db_session, world.caregiver) == 0
    assert q.inbox_unread(db_session, world.operator) == 1
    assert q.inbox(db_session, world.caregiver).empty
    assert len(q.inbox(db_session, world.caregiver, unread_only=False)) == 1
    # Marking all touches only the viewer's own.
    assert q.mark_inbox_read(db_session, world.operator) == 1
    assert q.inbox_unread(db_session, world.operator) == 0


def test_site_alerts_are_seen_by_the_caregivers_of_that_site_only(
    db_session: Session, factory: Factory, world: World
) -> None:
    site_a = world.caregiver.site_id
    elsewhere = factory.site()
    theirs = factory.resident(elsewhere, name="Elsewhere")
    other_site = Viewer.of(factory.user(Role.CAREGIVER, residents=(theirs,), site_id=elsewhere.id))
    # Works at site A by assignment only (no User.site_id), or by User.site_id only.
    mine = db_session.scalar(select(Resident).where(Resident.name == "Mine"))
    by_assignment = Viewer.of(factory.user(Role.CAREGIVER, residents=(mine,)))
    by_site = Viewer.of(factory.user(Role.CAREGIVER, site_id=site_a))
    # An alert of no site at all is for operators.
    siteless = _raise(db_session, RuleKind.DATA_QUALITY, Severity.INFO, Subject("global", "x"), 4)

    site_alerts = {world.kitchen, world.site_quality}
    for viewer in (by_assignment, by_site):
        seen = set(q.list_alerts(db_session, viewer, statuses=None)["id"])
        assert site_alerts <= seen and siteless not in seen
        assert world.about_other not in seen and world.other_device not in seen
        assert q.alert_detail(db_session, viewer, world.kitchen).what == "Flame detected"
    assert set(q.list_alerts(db_session, by_site, statuses=None)["id"]) == site_alerts
    assert q.list_alerts(db_session, other_site, statuses=None).empty
    assert q.alert_counts(db_session, other_site).critical_unresolved == 0
    for alert_id in (world.kitchen, siteless):
        with pytest.raises(AccessDenied):
            q.check_alert(db_session, other_site, alert_id)
    with pytest.raises(AccessDenied):
        q.check_alert(db_session, world.caregiver, siteless)
    assert siteless in set(q.list_alerts(db_session, world.operator)["id"])


def test_a_caregiver_acknowledges_and_resolves_a_site_alert(
    db_session: Session, world: World
) -> None:
    alert = q.acknowledge_alert(db_session, world.caregiver, world.kitchen, "on my way")
    assert alert.status is AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by == world.caregiver.user_id
    alert = q.resolve_alert(db_session, world.caregiver, world.kitchen, "pan fire put out")
    assert alert.status is AlertStatus.RESOLVED and alert.resolved_by == world.caregiver.user_id
    audited = set(
        db_session.execute(
            select(AuditEntry.action, AuditEntry.actor_id).where(
                AuditEntry.target_id == world.kitchen
            )
        ).all()
    )
    assert {
        ("alert.acknowledge", world.caregiver.user_id),
        ("alert.resolved", world.caregiver.user_id),
    } <= audited


def test_unread_counts_are_open_alerts_the_viewer_sees_and_their_inbox(
    db_session: Session, factory: Factory, world: World
) -> None:
    assert q.unread_counts(db_session, world.caregiver) == q.UnreadCounts(
        alerts=4, critical=2, inbox=0
    )
    assert q.unread_counts(db_session, world.operator) == q.UnreadCounts(
        alerts=6, critical=3, inbox=0
    )
    # Taken on by someone: no longer unread for anyone.
    q.acknowledge_alert(db_session, world.operator, world.kitchen)
    db_session.add(
        Notification(
            idempotency_key=f"test:{world.kitchen}",
            alert_id=uuid.UUID(world.kitchen),
            recipient_id=world.caregiver.user_id,
            channel=Channel.INBOX,
            address="inbox",
            purpose=NotificationPurpose.NEW,
            status=NotificationStatus.SENT,
            subject="Flame detected",
        )
    )
    db_session.flush()
    assert q.unread_counts(db_session, world.caregiver) == q.UnreadCounts(
        alerts=3, critical=1, inbox=1
    )
    elsewhere = factory.resident(factory.site())
    other_site = Viewer.of(factory.user(Role.CAREGIVER, residents=(elsewhere,)))
    assert q.unread_counts(db_session, other_site) == q.UnreadCounts(alerts=0, critical=0, inbox=0)
