"""Overview page: a card per visible resident, worst first; vitals, devices, live refresh."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import users
from core.alerts.lifecycle import Subject, acknowledge, raise_alert
from core.rollups import floor_bucket
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    CaregiverAssignment,
    Device,
    DeviceStatus,
    Notification,
    Reading,
    Resident,
    Rollup,
    RollupPeriod,
    RuleKind,
    Severity,
    User,
)
from tests.dashboards.conftest import empty_tables, no_exception, texts

PAGE = "overview"


@pytest.fixture
def clean(app_db):
    """No alerts, readings or rollups; devices healthy and online (restored after the test)."""

    def reset() -> None:
        empty_tables(app_db, Notification, AlertHistory, Alert, Reading, Rollup)
        with app_db.session() as session:
            for device in session.scalars(select(Device)):
                device.status = DeviceStatus.ONLINE
                device.last_seen = utcnow()
                device.battery = 90
                device.quarantined = False
            session.commit()

    reset()
    yield app_db
    reset()


def residents_by_room(db) -> dict[str, Resident]:
    with db.session() as session:
        return {r.room: r for r in session.scalars(select(Resident))}


def assigned_rooms(db, username: str) -> set[str]:
    user = db.user(username)
    with db.session() as session:
        return set(
            session.scalars(
                select(Resident.room)
                .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
                .where(CaregiverAssignment.user_id == user.id, CaregiverAssignment.tier == 1)
            )
        )


def card_titles(at) -> list[str]:
    """The cards' bold first lines, in page order ('**name · room 101**')."""
    return [m.value for m in at.markdown if m.value.startswith("**")]


def open_alert(db, resident: Resident, severity: Severity, title: str, event: str | None = None):
    with db.session() as session:
        raised = raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=severity,
            subject=Subject("resident", str(resident.id), db.site_id, resident.id),
            title=title,
            details={"event_type": event} if event else {},
        )
        session.commit()
        return raised.alert.id


def test_operator_and_admin_see_every_resident(open_app, clean) -> None:
    for username in ("operator", "admin"):
        at = open_app(username, page=PAGE)
        no_exception(at)
        assert [m.value for m in at.metric] == ["0", "0", "20"], username  # critical, attention, ok
        assert len(card_titles(at)) == 20
        assert len(at.page_link) >= 20


def test_a_caregiver_sees_only_their_residents_in_korean(open_app, clean) -> None:
    mine = assigned_rooms(clean, "caregiver1")
    at = open_app("caregiver1", page=PAGE)
    at.session_state["iotcare.language"] = "ko"  # what signing in as caregiver1 chooses
    at.run()
    no_exception(at)
    titles = card_titles(at)
    assert len(titles) == len(mine) == 5
    assert {t.split("·")[1].strip(" *호") for t in titles} == mine
    assert "이상 없음" in texts(at)
    assert [m.label for m in at.metric] == ["즉시 도움 필요", "주의 필요", "이상 없음"]


def test_worst_state_first_with_alerts_vitals_and_device_problems(open_app, clean) -> None:
    rooms = residents_by_room(clean)
    fallen, feverish, battery = rooms["104"], rooms["107"], rooms["110"]
    open_alert(clean, fallen, Severity.CRITICAL, "Fall", event="fall_detected")
    acknowledged = open_alert(clean, feverish, Severity.CRITICAL, "Panic", event="button_pressed")
    with clean.session() as session:
        operator = session.get(User, clean.user("operator").id)
        acknowledge(session, acknowledged, operator, note="on my way")
        wearable = session.scalar(
            select(Device).where(Device.resident_id == fallen.id, Device.type == "wearable")
        )
        motion = session.scalar(
            select(Device).where(Device.resident_id == fallen.id, Device.type == "motion_sensor")
        )
        now = utcnow()
        session.add_all(
            [
                Reading(device_id=wearable.id, metric="heart_rate", ts=now, value=97.0),
                Reading(device_id=wearable.id, metric="spo2", ts=now, value=95.0),
                Reading(
                    device_id=motion.id, metric="motion", ts=now - timedelta(minutes=12), value=1
                ),
                Rollup(
                    device_id=wearable.id,
                    metric="heart_rate",
                    period=RollupPeriod.HOUR,
                    bucket=floor_bucket(now, RollupPeriod.HOUR) - timedelta(hours=1),
                    count=360,
                    min=60,
                    max=90,
                    mean=75.0,
                ),
            ]
        )
        low = session.scalar(
            select(Device).where(Device.resident_id == battery.id, Device.type == "panic_button")
        )
        low.battery = 9
        session.commit()

    at = open_app("operator", page=PAGE)
    no_exception(at)
    assert [m.value for m in at.metric] == ["1", "2", "17"]
    titles = card_titles(at)
    assert "room 104" in titles[0]  # open critical alert first
    assert "room 107" in titles[1]  # acknowledged critical alert
    assert "room 110" in titles[2]  # a device problem
    page = texts(at)
    assert "Device reported: fall detected" in page
    assert "acknowledged: Device reported: panic button pressed" in page
    assert "Heart rate 97 bpm ↑" in page
    assert "Blood oxygen 95% " not in page  # no previous hour: no arrow, no trailing space
    assert "Blood oxygen 95%" in page
    assert "Last movement 12 min ago, room 104" in page
    assert "Panic button: battery 9%" in page
    assert "Needs help now" in page


def test_a_caregiver_does_not_see_alerts_of_other_residents(open_app, clean) -> None:
    mine = assigned_rooms(clean, "caregiver1")
    rooms = residents_by_room(clean)
    other = next(r for room, r in sorted(rooms.items()) if room not in mine)
    open_alert(clean, other, Severity.CRITICAL, "Fall", event="fall_detected")
    at = open_app("caregiver1", page=PAGE)
    no_exception(at)
    assert [m.value for m in at.metric] == ["0", "0", "5"]
    assert "낙상 감지" not in texts(at)
    assert all(other.room not in title for title in card_titles(at))


def test_filters_search_and_links_to_the_resident_page(open_app, clean) -> None:
    rooms = residents_by_room(clean)
    open_alert(clean, rooms["103"], Severity.WARNING, "Night exit", event="door_opened")
    at = open_app("operator", page=PAGE)
    at.button_group[0].set_value(["attention"]).run()
    no_exception(at)
    titles = card_titles(at)
    assert len(titles) == 1 and "room 103" in titles[0]
    at.button_group[0].set_value([]).run()
    at.text_input[0].input("115").run()
    titles = card_titles(at)
    assert len(titles) == 1 and "room 115" in titles[0]
    link = at.page_link[0]
    assert link.proto.query_string == f"resident={rooms['115'].id}"
    at.text_input[0].input("no such resident").run()
    assert "No resident matches" in texts(at)


def test_the_cards_refresh_themselves_and_keep_the_filter(open_app, clean) -> None:
    at = open_app("operator", page=PAGE)
    at.text_input[0].input("10").run()  # rooms 110 and 101..109
    assert len(card_titles(at)) == 10
    rooms = residents_by_room(clean)
    open_alert(clean, rooms["105"], Severity.CRITICAL, "Fall", event="fall_detected")
    at.run()  # what the next timed rerun sees
    assert at.text_input[0].value == "10"
    titles = card_titles(at)
    assert len(titles) == 10 and "room 105" in titles[0]


def test_no_residents_says_what_to_do(open_app, clean) -> None:
    with clean.session() as session:
        lonely = users.create_user(
            session,
            username="caregiver-unassigned",
            password="correct-horse-battery",
            role="caregiver",
            display_name="New caregiver",
            language="en",
            site_id=clean.site_id,
        )
        session.commit()
    try:
        at = open_app("caregiver-unassigned", page=PAGE)
        no_exception(at)
        assert "No residents are assigned to you yet" in texts(at)
        assert not at.metric
    finally:
        with clean.session() as session:
            session.delete(session.get(User, lonely.id))
            session.commit()
