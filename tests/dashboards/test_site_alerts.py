"""Site-level alerts (a kitchen gas leak) on the overview and alerts page; live lists; unread count.

The demo site ("sunrise") is site A; the module adds site B with one resident and its caregiver,
who must never see site A's gas leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest
import streamlit as st
from sqlalchemy import select

from core import registry, users
from core.alerts.lifecycle import Subject, raise_alert, resolve
from core.timeutil import to_local, utcnow
from models import (
    Alert,
    AlertHistory,
    AlertStatus,
    CaregiverAssignment,
    Device,
    Notification,
    Resident,
    RuleKind,
    Severity,
    User,
)
from tests.dashboards.conftest import AppDatabase, empty_tables, no_exception, texts

SITE_B_CAREGIVER = "caregiver-site-b"
SELECTED = "alerts.selected"


@pytest.fixture(scope="module")
def site_b(app_db: AppDatabase) -> str:
    """A second site with one resident, looked after by SITE_B_CAREGIVER (English)."""
    with app_db.session() as session:
        site = registry.create_site(session, "harbour", "Harbour House", "Asia/Seoul")
        resident = registry.create_resident(session, site, "Far Away", room="9")
        user = users.create_user(
            session,
            username=SITE_B_CAREGIVER,
            password="correct-horse-battery",
            role="caregiver",
            display_name="Site B caregiver",
            language="en",
            site_id=site.id,
        )
        users.assign(session, user, resident)
        session.commit()
        return site.id


@pytest.fixture
def no_alerts(app_db: AppDatabase, site_b: str) -> Iterator[AppDatabase]:
    """No alerts before and after the test."""
    empty_tables(app_db, Notification, AlertHistory, Alert)
    yield app_db
    empty_tables(app_db, Notification, AlertHistory, Alert)


def gas_leak(db: AppDatabase, minutes_ago: int = 4) -> str:
    """A critical gas leak reported by the demo kitchen's gas valve (no resident)."""
    with db.session() as session:
        valve = session.scalar(
            select(Device).where(Device.site_id == db.site_id, Device.type == "gas_valve")
        )
        raised = raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            subject=Subject("device", valve.id, db.site_id, None, valve.id),
            title="Gas leak",
            details={"event_type": "gas_leak"},
            at=utcnow() - timedelta(minutes=minutes_ago),
        )
        session.commit()
        return str(raised.alert.id)


def resident_alert(db: AppDatabase, username: str, event: str = "fall_detected") -> str:
    """A critical event alert about the first resident assigned to `username`."""
    with db.session() as session:
        resident = session.scalars(
            select(Resident)
            .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
            .join(User, User.id == CaregiverAssignment.user_id)
            .where(User.username == username, CaregiverAssignment.tier == 1)
            .order_by(Resident.id)
        ).first()
        raised = raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            subject=Subject("resident", str(resident.id), resident.site_id, resident.id),
            title=event,
            details={"event_type": event},
        )
        session.commit()
        return str(raised.alert.id)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def sidebar_text(at) -> str:
    return "\n".join(str(m.value) for m in at.sidebar.markdown)


def test_a_gas_leak_is_on_every_overview_of_its_site(open_app, no_alerts) -> None:
    leak = gas_leak(no_alerts)
    with no_alerts.session() as session:
        opened = session.get(Alert, UUID(leak)).opened_at
    local = to_local(opened, "Asia/Seoul").strftime("%Y-%m-%d %H:%M")
    for username, residents in (("caregiver1", 5), ("operator", 21)):
        at = open_app(username, page="overview", language="en")
        no_exception(at)
        banner = [e.value for e in at.error]
        assert len(banner) == 1, username
        assert "**Gas leak**" in banner[0] and "kitchen (Gas valve)" in banner[0]
        assert f"since {local} (Asia/Seoul time)" in banner[0]
        counts = metrics(at)
        assert counts["Home alerts"] == "1"
        if username == "caregiver1":  # nobody at the home is all well during a gas leak
            assert (counts["Needs attention"], counts["All well"]) == ("5", "0")
            assert "Alert about the home in progress" in texts(at)
        else:  # the operator also sees site B's resident, who is fine
            assert (counts["Needs attention"], counts["All well"]) == ("20", "1")
        assert sum(int(counts[s]) for s in ("Needs help now", "Needs attention", "All well")) == (
            residents
        )
        link = next(p for p in at.page_link if "acknowledge or resolve" in p.label)
        assert link.proto.query_string == f"alert={leak}"

    at = open_app(SITE_B_CAREGIVER, page="overview")
    no_exception(at)
    assert not at.error and "Gas leak" not in texts(at)
    assert "Home alerts" not in metrics(at) and metrics(at)["All well"] == "1"


def test_the_banner_reads_in_korean(open_app, no_alerts) -> None:
    gas_leak(no_alerts)
    at = open_app("caregiver1", page="overview")  # the demo caregivers read Korean
    no_exception(at)
    assert "가스 누출" in at.error[0].value and "kitchen (가스 밸브)" in at.error[0].value
    assert metrics(at)["시설 알림"] == "1"


def test_a_caregiver_of_the_site_acts_on_the_gas_leak_on_the_alerts_page(
    open_app, no_alerts
) -> None:
    leak = gas_leak(no_alerts)
    caregiver = no_alerts.user("caregiver1")
    at = open_app("caregiver1", page="alerts", language="en")
    no_exception(at)
    assert at.selectbox(key=SELECTED).value == leak
    assert "Gas leak" in [s.value for s in at.subheader]
    at.text_area(key=f"alerts.ack_note.{leak}").input("closing the valve")
    at.button(key=f"alerts.ack_submit.{leak}").click().run()
    no_exception(at)
    with no_alerts.session() as session:
        alert = session.get(Alert, UUID(leak))
        assert alert.status is AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == caregiver.id
    at.text_area(key=f"alerts.resolve_note.{leak}").input("valve closed, aired out")
    at.button(key=f"alerts.resolve_submit.{leak}").click().run()
    no_exception(at)
    with no_alerts.session() as session:
        assert session.get(Alert, UUID(leak)).status is AlertStatus.RESOLVED

    other = open_app(SITE_B_CAREGIVER, page="alerts")
    no_exception(other)
    assert not other.selectbox and "Gas leak" not in texts(other)
    other.query_params["alert"] = leak
    other.run()
    assert "You do not have access to this." in texts(other)


def test_the_alert_list_and_sidebar_refresh_themselves(
    open_app, no_alerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every fragment the app declares, with its timed rerun interval.
    declared: dict[str, object] = {}
    real_fragment = st.fragment

    def recording_fragment(func=None, *, run_every=None, **kwargs):
        def wrap(f):
            declared[f.__name__] = run_every
            return real_fragment(f, run_every=run_every, **kwargs)

        return wrap(func) if func is not None else wrap

    monkeypatch.setattr(st, "fragment", recording_fragment)
    fall = resident_alert(no_alerts, "caregiver1")
    at = open_app("caregiver1", page="alerts", language="en")
    no_exception(at)
    from dashboards.context import app_context

    refresh = app_context().settings.app_refresh
    assert declared["live_list"] == refresh and declared["unread_box"] == refresh
    assert at.selectbox(key=SELECTED).value == fall
    assert "Open alerts: 1 · :red-badge[:material/emergency: 1 critical]" in sidebar_text(at)

    # A caregiver is writing a note on the fall when a gas leak comes in and the fall is resolved
    # by someone else: the next refresh lists the leak and keeps the fall chosen (its form stays).
    at.text_area(key=f"alerts.resolve_note.{fall}").input("half a no")
    gas_leak(no_alerts, minutes_ago=0)
    with no_alerts.session() as session:
        operator = session.get(User, no_alerts.user("operator").id)
        resolve(session, UUID(fall), operator, note="done by the night shift")
        session.commit()
    at.run()  # what the fragment's next timed rerun sees
    no_exception(at)
    options = list(at.selectbox(key=SELECTED).options)
    assert any("Gas leak" in label for label in options)
    assert at.selectbox(key=SELECTED).value == fall
    table = next(f.value for f in at.dataframe if "Since" in f.value.columns)
    assert table["What"].tolist() == ["Gas leak"]
    assert "Open alerts: 1 · :red-badge[:material/emergency: 1 critical]" in sidebar_text(at)


def test_unread_count_in_the_sidebar_per_role_on_every_page(open_app, no_alerts) -> None:
    gas_leak(no_alerts)
    resident_alert(no_alerts, "caregiver1")
    resident_alert(no_alerts, "caregiver2", event="button_pressed")
    expected = {
        "caregiver1": "Open alerts: 2 · :red-badge[:material/emergency: 2 critical]",
        "caregiver2": "Open alerts: 2 · :red-badge[:material/emergency: 2 critical]",
        "operator": "Open alerts: 3 · :red-badge[:material/emergency: 3 critical]",
        SITE_B_CAREGIVER: "Open alerts: 0",
    }
    for username, line in expected.items():
        for page in ("overview", "account"):
            at = open_app(username, page=page, language="en")
            no_exception(at)
            shown = sidebar_text(at)
            assert line in shown, (username, page, shown)
            assert "Unread messages: 0" in shown
    at = open_app("caregiver1", page="overview")
    assert "미확인 알림: 2건 · :red-badge[:material/emergency: 위급 2건]" in sidebar_text(at)
    assert "읽지 않은 메시지: 0건" in sidebar_text(at)
