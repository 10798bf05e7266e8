"""Rough edges a new user hit (issue 14): Korean titles, first resident, labels, counters."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest
from sqlalchemy import select

from core.access import Viewer
from core.alerts.lifecycle import Subject, raise_alert
from core.alerts.titles import title_text
from core.i18n import translator
from core.timeutil import utcnow
from core.use_cases.alerts import alert_counts
from core.use_cases.overview import CareState, resident_overview
from core.use_cases.rules import remove_override, set_override
from dashboards.components.charts import reports_figure
from dashboards.components.i18n import preferred_language
from models import (
    Alert,
    AlertHistory,
    AlertRule,
    CaregiverAssignment,
    Device,
    Notification,
    Resident,
    RuleKind,
    Severity,
    Site,
    User,
)
from tests.conftest import make_test_settings
from tests.dashboards.conftest import AppDatabase, empty_tables, no_exception, texts
from tests.factories import Factory


def _resident_of(session, username: str) -> Resident:
    return session.scalars(
        select(Resident)
        .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
        .join(User, User.id == CaregiverAssignment.user_id)
        .where(User.username == username, CaregiverAssignment.tier == 1)
        .order_by(Resident.id)
    ).first()


@pytest.fixture
def rule_alert(app_db: AppDatabase, tmp_path: Path) -> str:
    """A default rule's alert about caregiver1's resident, its details from an older engine."""
    empty_tables(app_db, Notification, AlertHistory, Alert)
    # Sessions with settings queue notifications for the alerts they change.
    notifying = make_test_settings(tmp_path)
    with app_db.session(notifying) as session:
        resident = _resident_of(session, "caregiver1")
        rule = session.scalar(select(AlertRule).where(AlertRule.name == "High heart rate"))
        raised = raise_alert(
            session,
            kind=RuleKind.THRESHOLD,
            severity=Severity.WARNING,
            subject=Subject("resident", str(resident.id), app_db.site_id, resident.id, None),
            title=f"High heart rate: {resident.name}",
            details={},  # nothing to describe the finding by: the page falls back on the title
            rule=rule,
            at=utcnow() - timedelta(minutes=20),
        )
        session.commit()
        return str(raised.alert.id)


def test_korean_alert_page_shows_rule_names_and_titles_in_korean(open_app, rule_alert) -> None:
    # Chosen before the page runs: AppTest formats a Korean widget's options in English.
    at = open_app("caregiver1", page="alerts", query={"alert": rule_alert})
    no_exception(at)
    assert at.selectbox(key="alerts.selected").value == rule_alert
    page = texts(at)
    assert "High heart rate" not in page
    assert "심박수 높음" in page


def test_korean_notification_subject_names_the_rule_in_korean(
    app_db: AppDatabase, rule_alert
) -> None:
    with app_db.session() as session:
        subjects = session.scalars(
            select(Notification.subject).where(Notification.alert_id == UUID(rule_alert))
        ).all()
    # The demo caregivers read Korean; their messages name the default rule in Korean too.
    korean = [s for s in subjects if s and "심박수 높음" in s]
    assert korean, subjects
    assert not any("High heart rate" in s for s in korean)


@pytest.mark.parametrize(
    ("stored", "korean"),
    [
        ("Fall detected", "낙상 감지"),
        ("High heart rate: Kim", "심박수 높음: Kim"),
        ("Device offline: wearable", "기기 오프라인: 웨어러블"),
        ("Setup: no motion data yet: Kim", "설정 필요: 아직 움직임 데이터 없음: Kim"),
        ("Kitchen stove left on", "Kitchen stove left on"),  # an operator's own rule: as named
    ],
)
def test_stored_titles_read_in_korean_and_stay_as_stored_in_english(
    stored: str, korean: str
) -> None:
    assert title_text(stored, "ko") == korean
    assert title_text(stored, "en") == stored


def test_korean_charts_label_dates_the_korean_way() -> None:
    reports = pd.DataFrame(
        {"day": [date(2026, 12, 5)], "in_bed_minutes": [480], "active_hours": [6]}
    )
    korean = reports_figure(reports, translator("ko")).layout.xaxis
    assert [stop.value for stop in korean.tickformatstops] == [
        "%H:%M<br>%-m월 %-d일",
        "%-m월 %-d일",
    ]
    assert korean.hoverformat == "%-m월 %-d일 %H:%M"
    english = reports_figure(reports, translator("en")).layout.xaxis
    assert english.tickformatstops[1].value == "%b %-d"


@pytest.mark.parametrize(
    ("locale", "title"), [("ko-KR", "로그인"), ("en-US", "Sign in"), (None, "Sign in")]
)
def test_sign_in_page_speaks_the_browsers_language(open_app, locale, title) -> None:
    at = open_app(context={"locale": locale})
    no_exception(at)
    assert title in texts(at)


def test_sign_in_language_chosen_by_hand_wins_over_the_browser(open_app) -> None:
    at = open_app(context={"locale": "ko-KR"})
    at.selectbox(key="iotcare.signin_language").set_value("en").run()
    no_exception(at)
    assert "Sign in" in texts(at)


@pytest.mark.parametrize(
    ("tags", "chosen"),
    [
        (("ko-KR",), "ko"),
        ((None, "fr-FR,ko;q=0.8,en;q=0.5"), "ko"),
        (("de-DE", "de,en-GB;q=0.7"), "en"),
        (("fr-FR", None), None),
        ((None, None), None),
    ],
)
def test_preferred_language_of_browser_tags(tags, chosen) -> None:
    assert preferred_language(*tags) == chosen


def _alert_about(session, resident: Resident, severity: Severity, minutes_ago: int) -> None:
    raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=severity,
        subject=Subject("resident", str(resident.id), resident.site_id, resident.id, None),
        title="Fall detected",
        details={"event_type": "fall_detected"},
        at=utcnow() - timedelta(minutes=minutes_ago),
    )


def test_resident_page_opens_on_the_resident_most_in_trouble(
    open_app, app_db: AppDatabase, tmp_path: Path
) -> None:
    empty_tables(app_db, Notification, AlertHistory, Alert)
    # Sessions with settings queue notifications for the alerts they change.
    notifying = make_test_settings(tmp_path)
    with app_db.session(notifying) as session:
        by_name = list(
            session.scalars(
                select(Resident).where(Resident.active.is_(True)).order_by(Resident.name)
            )
        )
        warned, critical, later_critical = by_name[2], by_name[4], by_name[3]
        _alert_about(session, warned, Severity.WARNING, 120)  # older, but less severe
        _alert_about(session, later_critical, Severity.CRITICAL, 5)
        _alert_about(session, critical, Severity.CRITICAL, 30)  # most severe, waiting longest
        session.commit()
    at = open_app("operator", page="resident", language="en")
    no_exception(at)
    assert at.selectbox(key="resident.choice").value == critical.id


def test_resident_page_without_alerts_opens_on_the_first_resident(
    open_app, app_db: AppDatabase
) -> None:
    empty_tables(app_db, Notification, AlertHistory, Alert)
    at = open_app("operator", page="resident", language="en")
    no_exception(at)
    picker = at.selectbox(key="resident.choice")
    assert picker.index == 0


def test_resident_picker_tells_namesakes_apart_by_room_and_site(
    open_app, app_db: AppDatabase
) -> None:
    empty_tables(app_db, Notification, AlertHistory, Alert)
    with app_db.session() as session:
        first = session.scalars(
            select(Resident).where(Resident.active.is_(True)).order_by(Resident.name)
        ).first()
        annex = Factory(session).site(timezone="Asia/Seoul")
        namesake = Factory(session).resident(annex, name=first.name, room=first.room)
        session.commit()
        namesake_id, annex_id = namesake.id, annex.id
    try:
        at = open_app("operator", page="resident", language="en")
        no_exception(at)
        options = at.selectbox(key="resident.choice").options
        same = f"{first.name} · room {first.room}"
        labels = [o for o in options if o.startswith(same)]
        assert len(labels) == 2
        assert len(set(labels)) == 2  # namesakes in the same room number, at two sites
        assert any(label.endswith(f" · {annex.name}") for label in labels)
    finally:
        with app_db.session() as session:
            session.delete(session.get(Resident, namesake_id))
            session.delete(session.get(Site, annex_id))
            session.commit()


def test_device_picker_never_shows_nan_for_a_device_without_name_or_resident(
    open_app, app_db: AppDatabase
) -> None:
    with app_db.session() as session:
        site = session.get(Site, app_db.site_id)
        device = Factory(session).device(site=site, device_id="edge-nameless", name=None)
        session.commit()
        device_id = device.id
    try:
        at = open_app("operator", page="devices", language="en")
        no_exception(at)
        options = at.selectbox(key="devices.detail.pick").options
        assert device_id in options  # its id alone: nothing else is known
        assert not [o for o in options if "nan" in o.split()]
    finally:
        with app_db.session() as session:
            session.delete(session.get(Device, device_id))
            session.commit()


def test_new_rule_form_says_nothing_is_required_before_anything_was_entered(open_app) -> None:
    new = "rules.edit.0"
    at = open_app("operator", page="rules", language="en")
    no_exception(at)
    assert "Limit is required." not in texts(at)
    assert "Fill in the settings to see what the rule will do." in texts(at)
    at.button(key=f"{new}.save").click().run()  # saving asks for everything missing
    no_exception(at)
    assert "Limit is required." in texts(at)
    at.text_input(key=f"{new}.name").input("Still no limit").run()
    assert "Limit is required." in texts(at)  # and keeps asking once save was tried


def test_overview_counts_a_residents_device_alert_as_the_alerts_page_does(
    open_app, app_db: AppDatabase, tmp_path: Path
) -> None:
    empty_tables(app_db, Notification, AlertHistory, Alert)
    # Sessions with settings queue notifications for the alerts they change.
    notifying = make_test_settings(tmp_path)
    with app_db.session(notifying) as session:
        resident = _resident_of(session, "caregiver1")
        motion = session.scalar(
            select(Device.id).where(
                Device.resident_id == resident.id, Device.type == "motion_sensor"
            )
        )
        raise_alert(  # about the device only, as the offline rule raises it
            session,
            kind=RuleKind.DEVICE_OFFLINE,
            severity=Severity.WARNING,
            subject=Subject("device", motion, app_db.site_id, None, motion),
            title="Device offline: motion sensor",
            details={},
            at=utcnow() - timedelta(minutes=40),
        )
        session.commit()
        viewer = Viewer.of(app_db.user("caregiver1"))
        overview = resident_overview(session, viewer)
        counts = alert_counts(session, viewer)
    on_cards = sum(len(card.alerts) for card in overview.cards)
    # Every unresolved alert the alerts page counts is on a resident's card or the home's.
    assert on_cards + len(overview.site_alerts) == counts.open + counts.acknowledged == 1
    card = next(c for c in overview.cards if c.resident_id == resident.id)
    assert card.state is CareState.ATTENTION
    at = open_app("caregiver1", page="overview", language="en")
    no_exception(at)
    assert ":orange[**Warning**]" in texts(at)  # the alert's line on the resident's card


def test_rule_page_names_overridden_namesakes_with_their_rooms(
    open_app, app_db: AppDatabase
) -> None:
    operator = Viewer.of(app_db.user("operator"))
    with app_db.session() as session:
        rule = session.scalar(select(AlertRule).where(AlertRule.name == "High heart rate"))
        names = session.execute(
            select(Resident.name).where(Resident.active.is_(True)).group_by(Resident.name)
        ).scalars()
        shared = next(
            name
            for name in names
            if len(session.scalars(select(Resident).where(Resident.name == name)).all()) > 1
        )
        namesake = session.scalars(
            select(Resident).where(Resident.name == shared).order_by(Resident.id)
        ).first()
        override_id = set_override(session, operator, rule.id, namesake.id, {"value": 130})
        session.commit()
        rule_id = rule.id
    try:
        at = open_app("operator", page="rules", query={"rule": str(rule_id)}, language="ko")
        no_exception(at)
        page = texts(at)
        assert f"{shared} ({namesake.room})" in page
        assert "심박수 높음" in page  # the default rule's name, in the reader's language
    finally:
        with app_db.session() as session:
            remove_override(session, operator, override_id)
            session.commit()


def test_korean_outbox_names_the_alert_in_korean(open_app, rule_alert) -> None:
    at = open_app("operator", page="notifications", language="ko")
    no_exception(at)
    frame = next(f.value for f in at.dataframe if "알림" in f.value.columns)
    alerts = set(frame["알림"])
    assert alerts and all(a.startswith("심박수 높음: ") for a in alerts), alerts
