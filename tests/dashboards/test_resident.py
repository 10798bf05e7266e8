"""Resident page: choosing a resident, access, the day's timeline, vitals, reports, care notes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.alerts.lifecycle import Subject, raise_alert
from core.care_report import save_report
from core.rollups import floor_bucket
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    CaregiverAssignment,
    CareNote,
    CareReport,
    Device,
    Event,
    Notification,
    Reading,
    Resident,
    Rollup,
    RollupPeriod,
    RuleKind,
    Severity,
)
from tests.dashboards.conftest import empty_tables, no_exception, texts

PAGE = "resident"
SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture
def clean(app_db):
    """No alerts, events, readings, rollups or reports before and after the test."""

    def reset() -> None:
        empty_tables(app_db, Notification, AlertHistory, Alert, Event, Reading, Rollup, CareReport)
        with app_db.session() as session:
            for resident in session.scalars(select(Resident)):
                resident.care_notes = None
            session.commit()

    reset()
    yield app_db
    reset()


def resident_in_room(db, room: str) -> Resident:
    with db.session() as session:
        return session.scalar(select(Resident).where(Resident.room == room))


def caregiver_rooms(db, username: str) -> list[str]:
    user = db.user(username)
    with db.session() as session:
        return sorted(
            session.scalars(
                select(Resident.room)
                .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
                .where(CaregiverAssignment.user_id == user.id)
            )
        )


def device_of(db, resident: Resident, kind: str) -> Device:
    with db.session() as session:
        return session.scalar(
            select(Device).where(Device.resident_id == resident.id, Device.type == kind)
        )


def test_operator_and_admin_choose_among_everyone(open_app, clean) -> None:
    for username in ("operator", "admin"):
        at = open_app(username, page=PAGE, language="en")
        no_exception(at)
        assert len(at.selectbox[0].options) == 20
        assert len(at.tabs) == 4
        assert at.header[0].value  # the first resident by name


def test_a_caregiver_chooses_among_their_residents_only(open_app, clean) -> None:
    mine = caregiver_rooms(clean, "caregiver1")
    at = open_app("caregiver1", page=PAGE, language="en")
    no_exception(at)
    options = at.selectbox[0].options
    assert len(options) == len(mine) == 5
    assert sorted(o.rsplit("room ", 1)[1] for o in options) == mine


def test_the_link_from_a_card_opens_that_resident_and_choosing_updates_the_link(
    open_app, clean
) -> None:
    mine = caregiver_rooms(clean, "caregiver1")
    first, second = (resident_in_room(clean, room) for room in mine[:2])
    at = open_app("caregiver1", page=PAGE, query={"resident": str(second.id)}, language="en")
    no_exception(at)
    assert at.header[0].value == second.name
    assert at.selectbox[0].value == second.id
    at.selectbox[0].set_value(first.id).run()
    no_exception(at)
    assert at.header[0].value == first.name
    assert at.query_params["resident"] == str(first.id)


@pytest.mark.parametrize("asked", ["other", "missing", "junk"])
def test_a_caregiver_asking_for_someone_else_gets_a_message_not_data(
    open_app, clean, asked
) -> None:
    mine = caregiver_rooms(clean, "caregiver1")
    other = next(r for r in (f"{100 + i}" for i in range(1, 21)) if r not in mine)
    target = resident_in_room(clean, other)
    with clean.session() as session:
        session.add(
            Reading(
                device_id=device_of(clean, target, "wearable").id,
                metric="heart_rate",
                ts=utcnow(),
                value=77,
            )
        )
        session.commit()
    wanted = {"other": str(target.id), "missing": "999999", "junk": "abc"}[asked]
    at = open_app("caregiver1", page=PAGE, query={"resident": wanted}, language="en")
    no_exception(at)
    assert "not one of the residents assigned to you" in texts(at)
    assert target.name not in texts(at)
    assert not at.header and not at.selectbox and not at.tabs and not at.metric
    assert not at.get("plotly_chart")


def test_the_day_shows_events_alerts_and_room_to_room_movement(open_app, clean) -> None:
    resident = resident_in_room(clean, "104")
    yesterday = datetime.now(SEOUL).date() - timedelta(days=1)

    def at_local(hour: int, minute: int = 0) -> datetime:
        return datetime.combine(yesterday, time(hour, minute), tzinfo=SEOUL)

    motion = device_of(clean, resident, "motion_sensor")
    fall = device_of(clean, resident, "fall_detector")
    with clean.session() as session:
        session.add_all(
            [
                Reading(device_id=motion.id, metric="motion", ts=at_local(9, m), value=1)
                for m in range(0, 10, 2)
            ]
            + [Reading(device_id=motion.id, metric="motion", ts=at_local(14, 5), value=1)]
        )
        session.add(
            Event(
                device_id=fall.id,
                site_id=clean.site_id,
                resident_id=resident.id,
                type="fall_detected",
                ts=at_local(10, 30),
                data={},
            )
        )
        raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            subject=Subject("resident", str(resident.id), clean.site_id, resident.id),
            title="Fall",
            details={"event_type": "fall_detected"},
            at=at_local(10, 31),
        )
        session.commit()
    at = open_app("operator", page=PAGE, query={"resident": str(resident.id)})
    at.date_input[0].set_value(yesterday).run()
    no_exception(at)
    assert at.get("plotly_chart")
    frame = at.dataframe[0].value
    assert list(frame.iloc[:, 0]) == ["10:30", "10:31"]  # local times, in order
    whats = list(frame.iloc[:, 2])
    assert whats[0] == "fall detected"
    assert whats[1] == "Critical alert (Open): Device reported: fall detected"
    assert "Movement from room to room: 2 stays in 1 room." in texts(at)
    assert "Times are shown in Asia/Seoul time." in texts(at)


def test_an_empty_day_says_so(open_app, clean) -> None:
    at = open_app("operator", page=PAGE)
    no_exception(at)
    assert "Nothing recorded on" in texts(at)


def test_vitals_raw_for_hours_and_hourly_for_days(open_app, clean) -> None:
    resident = resident_in_room(clean, "106")
    wearable = device_of(clean, resident, "wearable")
    now = utcnow()
    with clean.session() as session:
        session.add_all(
            [
                Reading(
                    device_id=wearable.id,
                    metric="heart_rate",
                    ts=now - timedelta(minutes=m),
                    value=70 + m % 5,
                )
                for m in range(0, 60, 5)
            ]
            + [Reading(device_id=wearable.id, metric="spo2", ts=now, value=96)]
        )
        session.add_all(
            [
                Rollup(
                    device_id=wearable.id,
                    metric="heart_rate",
                    period=RollupPeriod.HOUR,
                    bucket=floor_bucket(now, RollupPeriod.HOUR) - timedelta(hours=h),
                    count=360,
                    min=60,
                    max=90,
                    mean=72.5,
                )
                for h in range(1, 48)
            ]
        )
        session.commit()
    at = open_app("operator", page=PAGE, query={"resident": str(resident.id)})
    no_exception(at)
    assert "Every reading, Asia/Seoul time." in texts(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Heart rate"] == "70 bpm" and labels["Blood oxygen"] == "96%"
    at.button_group[0].set_value("7d").run()
    no_exception(at)
    assert "Hourly averages" in texts(at)
    assert {m.label: m.value for m in at.metric}["Heart rate"] == "72.5 bpm"
    at.button_group[0].set_value("30d").run()
    at.selectbox[0].set_value(resident_in_room(clean, "107").id).run()
    no_exception(at)
    assert "No vital signs in this range" in texts(at)


def test_sleep_and_activity_from_the_daily_reports_and_care_notes(open_app, clean) -> None:
    resident = resident_in_room(clean, "108")
    today = datetime.now(SEOUL).date()
    with clean.session() as session:
        for back, minutes in ((1, 450), (2, 400)):
            save_report(
                session,
                resident.id,
                today - timedelta(days=back),
                {
                    "sleep": {"in_bed_minutes": minutes, "times_up": 2},
                    "activity": {"motion_total": 310, "active_hours": 11},
                    "night_doors": {"count": 1},
                    "alerts": {"count": 0},
                    "vitals": {"heart_rate": {"mean": 71.2}},
                },
            )
        session.get(Resident, resident.id).care_notes = "Likes tea at 15:00. *Hard of hearing*."
        session.commit()
    at = open_app("operator", page=PAGE, query={"resident": str(resident.id)})
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["In bed last night"] == "7 h 30 min"
    assert metrics["Times up at night"] == "2"
    assert metrics["Active hours"] == "11"
    assert f"Report of {(today - timedelta(days=1)).isoformat()}" in texts(at)
    assert "Likes tea at 15:00. *Hard of hearing*." in texts(at)
    devices = at.dataframe[-1].value
    assert len(devices) == 7 and "Wearable" in set(devices.iloc[:, 0])


def test_a_resident_without_reports_or_notes_says_what_to_expect(open_app, clean) -> None:
    at = open_app("operator", page=PAGE)
    no_exception(at)
    page = texts(at)
    assert "No daily report yet" in page
    assert "No care notes yet." in page


def test_a_caregiver_writes_a_dated_care_note_shown_with_its_author(open_app, clean) -> None:
    room = caregiver_rooms(clean, "caregiver1")[0]
    resident = resident_in_room(clean, room)
    at = open_app("caregiver1", page=PAGE, query={"resident": str(resident.id)}, language="en")
    no_exception(at)
    assert "Nothing in the care log yet." in texts(at)
    at.text_area(key="care.note.text").input("   ")
    at.button(key="care.note.go").click().run()
    no_exception(at)
    assert "Note: This field is required." in "\n".join(e.value for e in at.error)
    at.text_area(key="care.note.text").input("Ate all of lunch; <b>cheerful</b>.")
    at.button(key="care.note.go").click().run()
    no_exception(at)
    page = texts(at)
    assert "Note added." in page
    assert "Ate all of lunch; <b>cheerful</b>." in [t.value for t in at.text]
    assert "caregiver1, " in page
    with clean.session() as session:
        note = session.scalar(select(CareNote).where(CareNote.resident_id == resident.id))
        assert note.author_name == "caregiver1"
        session.delete(note)
        session.commit()
