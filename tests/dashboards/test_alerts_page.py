"""Alerts page: a caregiver sees and acts on their residents' alerts only; acting is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.alerts.lifecycle import Subject, raise_alert
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    AlertStatus,
    AuditEntry,
    CaregiverAssignment,
    Channel,
    Device,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Resident,
    RuleKind,
    Severity,
    User,
)
from tests.conftest import make_test_settings
from tests.dashboards.conftest import AppDatabase, empty_tables, no_exception, texts

SELECTED = "alerts.selected"


@dataclass(frozen=True)
class Scene:
    """Alerts about caregiver1's resident (directly and through a device), another's, the site's."""

    mine: str
    mine_device: str
    other: str
    site: str
    mine_name: str
    other_name: str


def _resident_of(session: Session, username: str) -> Resident:
    return session.scalars(
        select(Resident)
        .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
        .join(User, User.id == CaregiverAssignment.user_id)
        .where(User.username == username, CaregiverAssignment.tier == 1)
        .order_by(Resident.id)
    ).first()


@pytest.fixture
def scene(app_db: AppDatabase, tmp_path: Path) -> Scene:
    """Four alerts, with their notifications queued (the inbox ones delivered)."""
    empty_tables(app_db, Notification, AlertHistory, Alert)
    # Sessions with settings queue notifications for the alerts they change.
    notifying = make_test_settings(tmp_path)
    now = utcnow()
    with app_db.session(notifying) as session:
        mine, other = _resident_of(session, "caregiver1"), _resident_of(session, "caregiver2")
        motion = session.scalar(
            select(Device.id).where(Device.resident_id == mine.id, Device.type == "motion_sensor")
        )

        def alert(kind, severity, subject, title, details, minutes) -> str:
            raised = raise_alert(
                session,
                kind=kind,
                severity=severity,
                subject=subject,
                title=title,
                details=details,
                at=now - timedelta(minutes=minutes),
            )
            return str(raised.alert.id)

        scene = Scene(
            mine=alert(
                RuleKind.EVENT,
                Severity.CRITICAL,
                Subject("resident", str(mine.id), app_db.site_id, mine.id, None),
                "Fall detected",
                {"event_type": "fall_detected"},
                30,
            ),
            mine_device=alert(
                RuleKind.DEVICE_OFFLINE,
                Severity.WARNING,
                Subject("device", motion, app_db.site_id, None, motion),
                "Device silent: motion",
                {"silent_minutes": 45},
                50,
            ),
            other=alert(
                RuleKind.EVENT,
                Severity.CRITICAL,
                Subject("resident", str(other.id), app_db.site_id, other.id, None),
                "Panic button (other resident)",
                {"event_type": "button_pressed"},
                10,
            ),
            site=alert(
                RuleKind.EVENT,
                Severity.CRITICAL,
                Subject(
                    "device", "kitchen", app_db.site_id, None, f"{app_db.site_id}-kitchen-flame"
                ),
                "Flame in the kitchen",
                {"event_type": "flame_detected"},
                5,
            ),
            mine_name=mine.name,
            other_name=other.name,
        )
        # The inbox messages count as delivered: a resolution then tells the same people.
        session.execute(
            update(Notification)
            .where(Notification.channel == Channel.INBOX)
            .values(status=NotificationStatus.SENT, sent_at=now)
        )
        session.commit()
    return scene


def _options(at) -> list[str]:
    """The alerts one may choose, as labelled on the page."""
    return list(at.selectbox(key=SELECTED).options)


def _table(at, column: str):
    """The first table on the page with this column (display tables carry no key)."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def _choose(at, alert_id: str):
    at.selectbox(key=SELECTED).set_value(alert_id).run()
    no_exception(at)
    return at


def test_caregiver_sees_alerts_of_assigned_residents_and_of_their_site(
    open_app, scene: Scene
) -> None:
    at = open_app("caregiver1", page="alerts", language="en")
    no_exception(at)
    options = _options(at)
    # Their resident's fall, the kitchen flame at their site, their resident's silent motion
    # sensor; never another resident's alert.
    assert len(options) == 3
    assert "Fall detected" in options[0] and scene.mine_name in options[0]
    assert "Flame detected" in options[1] and "kitchen-flame" in options[1]
    assert "No message for 45 minutes" in options[2]
    table = _table(at, "Severity")
    assert table["Severity"].tolist() == ["Critical", "Critical", "Warning"]  # severity, then age
    assert table["What"].tolist()[1] == "Flame detected"
    shown = texts(at) + " ".join(options) + table.to_string()
    assert scene.other_name not in shown and "Panic button" not in shown
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Open"] == "3" and metrics["Critical, not resolved"] == "2"


def test_caregiver_reads_the_page_in_korean(open_app, scene: Scene) -> None:
    at = open_app("caregiver1", page="alerts")  # the demo caregivers read Korean
    no_exception(at)
    table = _table(at, "심각도")
    assert table["심각도"].tolist() == ["위급", "위급", "주의"]
    assert table["내용"].tolist()[0] == "낙상 감지"
    # Her resident's fall, and the kitchen flame: she is on duty at the site.
    assert "읽지 않음 2건" in at.expander[0].label


def test_operator_sees_every_alert_most_severe_first(
    open_app, app_db: AppDatabase, scene: Scene
) -> None:
    at = open_app("operator", page="alerts")
    no_exception(at)
    assert len(_options(at)) == 4
    table = _table(at, "Severity")
    assert table["Severity"].tolist() == ["Critical", "Critical", "Critical", "Warning"]
    # Among the critical ones the longest waiting comes first.
    assert table["What"].tolist()[:3] == [
        "Fall detected",
        "Panic button pressed",
        "Flame detected",
    ]
    assert f"device {app_db.site_id}-kitchen-flame" in table["Who"].tolist()


def test_detail_shows_history_and_notifications(open_app, scene: Scene) -> None:
    at = _choose(open_app("operator", page="alerts"), scene.mine)
    assert "Fall detected" in [s.value for s in at.subheader]
    frames = [frame.value for frame in at.dataframe]
    history = next(f for f in frames if "What happened" in f.columns)
    assert history["What happened"].tolist() == ["Opened"]
    sent = next(f for f in frames if "To" in f.columns)
    assert "요양보호사 1" in sent["To"].tolist()
    assert "In-app inbox" in sent["Channel"].tolist()
    assert "Times are shown in Asia/Seoul time." in texts(at)


def test_acknowledge_resolve_and_reopen_through_the_page(
    open_app, app_db: AppDatabase, scene: Scene
) -> None:
    caregiver = app_db.user("caregiver1")
    at = _choose(open_app("caregiver1", page="alerts", language="en"), scene.mine)
    at.text_area(key=f"alerts.ack_note.{scene.mine}").input("가는 중입니다")
    at.button(key=f"alerts.ack_submit.{scene.mine}").click().run()
    no_exception(at)
    assert "Alert acknowledged: Fall detected." in texts(at)
    with app_db.session() as session:
        alert = session.get(Alert, UUID(scene.mine))
        assert alert.status is AlertStatus.ACKNOWLEDGED
        assert alert.acknowledged_by == caregiver.id and alert.ack_note == "가는 중입니다"

    # Resolving needs a note: refused in words, nothing changes.
    at.button(key=f"alerts.resolve_submit.{scene.mine}").click().run()
    no_exception(at)
    assert "Write what happened in the note" in texts(at)
    with app_db.session() as session:
        assert session.get(Alert, UUID(scene.mine)).status is AlertStatus.ACKNOWLEDGED

    at.text_area(key=f"alerts.resolve_note.{scene.mine}").input("넘어졌으나 다친 곳 없음")
    at.button(key=f"alerts.resolve_submit.{scene.mine}").click().run()
    no_exception(at)
    assert "Alert resolved: Fall detected." in texts(at)
    # The resolved alert stays on screen, with the reopen form.
    assert at.selectbox(key=SELECTED).value == scene.mine
    at.text_area(key=f"alerts.reopen_note.{scene.mine}").input("다시 넘어짐")
    at.button(key=f"alerts.reopen_submit.{scene.mine}").click().run()
    no_exception(at)

    with app_db.session() as session:
        alert = session.get(Alert, UUID(scene.mine))
        assert alert.status is AlertStatus.OPEN and alert.resolved_at is None
        actions = session.scalars(
            select(AlertHistory.action)
            .where(AlertHistory.alert_id == alert.id)
            .order_by(AlertHistory.at, AlertHistory.id)
        ).all()
        assert actions == ["opened", "acknowledged", "resolved", "reopened"]
        notes = session.scalars(
            select(AlertHistory.note).where(AlertHistory.alert_id == alert.id)
        ).all()
        assert "넘어졌으나 다친 곳 없음" in notes
        audited = session.execute(
            select(AuditEntry.action, AuditEntry.actor_id).where(AuditEntry.target_id == scene.mine)
        ).all()
        assert {
            ("alert.acknowledge", caregiver.id),
            ("alert.resolved", caregiver.id),
            ("alert.reopen", caregiver.id),
        } <= set(audited)
        # The resolution is for the others the alert had reached, not for who resolved it.
        told = session.scalars(
            select(Notification.recipient_id).where(
                Notification.alert_id == alert.id,
                Notification.purpose == NotificationPurpose.RESOLVED,
            )
        ).all()
        assert caregiver.id not in told


def test_a_caregiver_cannot_open_another_residents_alert_by_link(
    open_app, app_db: AppDatabase, scene: Scene
) -> None:
    at = open_app("caregiver1", page="alerts", language="en")
    at.query_params["alert"] = scene.other
    at.run()
    no_exception(at)
    assert "You do not have access to this." in texts(at)
    assert not any(scene.other_name in label for label in _options(at))
    assert "Panic button" not in texts(at)
    with app_db.session() as session:
        assert session.get(Alert, UUID(scene.other)).status is AlertStatus.OPEN


def test_a_link_opens_the_alert_even_when_the_filter_hides_it(open_app, scene: Scene) -> None:
    at = open_app("operator", page="alerts")
    at.radio(key="alerts.filter").set_value("resolved").run()
    no_exception(at)
    assert "No alerts match this filter" in texts(at)
    at.query_params["alert"] = scene.site
    at.run()
    no_exception(at)
    assert at.selectbox(key=SELECTED).value == scene.site
    assert "Flame detected" in [s.value for s in at.subheader]


def test_inbox_shows_unread_messages_and_marks_them_read(
    open_app, app_db: AppDatabase, scene: Scene
) -> None:
    caregiver = app_db.user("caregiver1")
    at = open_app("caregiver1", page="alerts", language="en")
    no_exception(at)
    # Her resident's fall, and the kitchen flame: she is on duty at the site.
    assert "2 unread" in at.expander[0].label
    at.button(key="alerts.inbox.mark_all").click().run()
    no_exception(at)
    assert "Messages marked as read: 2." in texts(at)
    assert "0 unread" in at.expander[0].label
    with app_db.session() as session:
        unread = session.scalars(
            select(Notification.id).where(
                Notification.recipient_id == caregiver.id,
                Notification.channel == Channel.INBOX,
                Notification.read_at.is_(None),
            )
        ).all()
        assert unread == []


def test_empty_state_says_what_happens_next(open_app, app_db: AppDatabase) -> None:
    empty_tables(app_db, Notification, AlertHistory, Alert)
    at = open_app("caregiver2", page="alerts", language="en")
    no_exception(at)
    assert "No alert needs attention right now" in texts(at)
    assert not at.selectbox


def test_admin_sees_every_alert(open_app, scene: Scene) -> None:
    at = open_app("admin", page="alerts")
    no_exception(at)
    assert len(_options(at)) == 4
