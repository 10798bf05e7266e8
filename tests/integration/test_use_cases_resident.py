"""core.use_cases.resident: access, the day's timeline, vitals at the right resolution, reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.access import AccessDenied, Viewer
from core.alerts.lifecycle import Subject, raise_alert
from core.care_report import make_report, save_report
from core.errors import NotFoundError
from core.use_cases.resident import (
    care_report,
    care_reports,
    daily_reports,
    day_timeline,
    resident_choices,
    resident_profile,
    stays_from_motion,
    vitals_series,
)
from models import Event, Reading, Role, Rollup, RollupPeriod, RuleKind, Severity

DAY = date(2026, 3, 10)
# Midnight of DAY in Seoul is 15:00 UTC the day before.
START = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


@pytest.fixture
def home(db_session, factory):
    site = factory.site(timezone="Asia/Seoul")
    mine = factory.resident(site, name="Mine", room="101", care_notes="Tea at three")
    other = factory.resident(site, name="Other", room="102")
    caregiver = Viewer.of(factory.user(Role.CAREGIVER, residents=(mine,)))
    operator = Viewer.of(factory.user(Role.OPERATOR))
    return site, mine, other, caregiver, operator


def test_caregivers_reach_only_their_residents(db_session, factory, home) -> None:
    _site, mine, other, caregiver, operator = home
    assert [c.name for c in resident_choices(db_session, caregiver)] == ["Mine"]
    assert {"Mine", "Other"} <= {c.name for c in resident_choices(db_session, operator)}
    assert resident_profile(db_session, caregiver, mine.id).care_notes == "Tea at three"
    end = START + timedelta(days=1)
    for call in (
        lambda: resident_profile(db_session, caregiver, other.id),
        lambda: day_timeline(db_session, caregiver, other.id, DAY),
        lambda: vitals_series(db_session, caregiver, other.id, START, end),
        lambda: daily_reports(db_session, caregiver, other.id),
        lambda: resident_profile(db_session, caregiver, 987654),
    ):
        with pytest.raises(AccessDenied):
            call()
    assert resident_profile(db_session, operator, other.id).name == "Other"


def test_the_timeline_of_a_local_day(db_session, factory, home) -> None:
    site, mine, other, caregiver, _operator = home
    bedroom = factory.device("motion_sensor", resident=mine, room="101")
    bath = factory.device("motion_sensor", resident=mine, room="101-bath")
    door = factory.device("door_sensor", resident=mine, room="101")
    theirs = factory.device("door_sensor", resident=other)
    at = START + timedelta(hours=8)
    db_session.add_all(
        [
            Reading(device_id=bedroom.id, metric="motion", ts=at, value=1),
            Reading(device_id=bedroom.id, metric="motion", ts=at + timedelta(minutes=5), value=1),
            Reading(device_id=bedroom.id, metric="motion", ts=at + timedelta(minutes=6), value=0),
            Reading(device_id=bath.id, metric="motion", ts=at + timedelta(minutes=9), value=1),
            Reading(device_id=bedroom.id, metric="motion", ts=at + timedelta(minutes=30), value=1),
            Reading(
                device_id=bedroom.id, metric="motion", ts=START - timedelta(minutes=1), value=1
            ),
            Event(
                device_id=door.id,
                site_id=site.id,
                resident_id=mine.id,
                type="door_opened",
                ts=at + timedelta(hours=1),
                data={},
            ),
            Event(
                device_id=door.id,
                site_id=site.id,
                resident_id=mine.id,
                type="motion",
                ts=at + timedelta(hours=1, minutes=1),
                data={},
            ),
            Event(
                device_id=theirs.id,
                site_id=site.id,
                resident_id=other.id,
                type="door_opened",
                ts=at,
                data={},
            ),
        ]
    )
    raise_alert(
        db_session,
        kind=RuleKind.NIGHT_EXIT,
        severity=Severity.WARNING,
        subject=Subject("resident", str(mine.id), site.id, mine.id, door.id),
        title="Night exit",
        details={"local_time": "17:00"},
        at=at + timedelta(hours=2),
    )
    db_session.flush()
    timeline = day_timeline(db_session, caregiver, mine.id, DAY)
    assert timeline.timezone == "Asia/Seoul" and timeline.start == START
    assert list(timeline.items["kind"]) == ["event", "alert"]  # motion events are not listed
    assert list(timeline.items["code"]) == ["door_opened", "night_exit"]
    assert list(timeline.items["room"]) == ["101", "101"]
    assert list(timeline.stays["room"]) == ["101", "101-bath", "101"]
    assert list(timeline.stays["readings"]) == [2, 1, 1]
    assert timeline.stays["start"].iloc[0] == at


def test_stays_merge_readings_closer_than_the_gap() -> None:
    t0 = START
    rows = [(t0 + timedelta(minutes=m), "a") for m in (0, 9, 18, 40)]
    stays = stays_from_motion(rows)
    assert list(stays["readings"]) == [3, 1]
    assert stays["end"].iloc[0] == t0 + timedelta(minutes=18)


def test_vitals_raw_up_to_a_day_hourly_beyond(db_session, factory, home) -> None:
    _site, mine, _other, caregiver, _operator = home
    wearable = factory.device("wearable", resident=mine)
    bed = factory.device("bed_sensor", resident=mine)
    db_session.add_all(
        [
            Reading(
                device_id=wearable.id,
                metric="heart_rate",
                ts=START + timedelta(minutes=m),
                value=70,
            )
            for m in range(10)
        ]
        + [
            Reading(device_id=bed.id, metric="heart_rate", ts=START, value=66),
            Reading(device_id=wearable.id, metric="battery_pct", ts=START, value=80),
        ]
        + [
            Rollup(
                device_id=wearable.id,
                metric=metric,
                period=RollupPeriod.HOUR,
                bucket=START - timedelta(hours=h),
                count=60,
                min=60,
                max=80,
                mean=70,
            )
            for h in range(1, 49)
            for metric in ("heart_rate", "battery_pct")
        ]
    )
    db_session.flush()
    raw = vitals_series(db_session, caregiver, mine.id, START, START + timedelta(hours=6))
    assert raw.resolution == "raw"
    assert len(raw.frame) == 11 and set(raw.frame["metric"]) == {"heart_rate"}
    assert set(raw.frame["device_type"]) == {"wearable", "bed_sensor"}
    week = vitals_series(db_session, caregiver, mine.id, START - timedelta(days=7), START)
    assert week.resolution == "hour"
    assert len(week.frame) == 48 and set(week.frame["metric"]) == {"heart_rate"}
    assert (week.frame["low"] == 60).all() and (week.frame["high"] == 80).all()


def test_a_dense_day_is_averaged_per_minute(db_session, factory, home) -> None:
    _site, mine, _other, caregiver, _operator = home
    wearable = factory.device("wearable", resident=mine)
    db_session.add_all(
        Reading(
            device_id=wearable.id,
            metric="spo2",
            ts=START + timedelta(seconds=10 * i),
            value=95 + i % 2,
        )
        for i in range(2_400)
    )
    db_session.flush()
    series = vitals_series(db_session, caregiver, mine.id, START, START + timedelta(hours=24))
    assert series.resolution == "minute"
    assert len(series.frame) == 400 and (series.frame["value"] == 95.5).all()


def test_daily_reports_newest_first(db_session, factory, home) -> None:
    _site, mine, _other, caregiver, _operator = home
    for day, minutes in ((DAY, 420.0), (DAY - timedelta(days=1), 380.5)):
        save_report(
            db_session,
            mine.id,
            day,
            {
                "sleep": {"in_bed_minutes": minutes, "times_up": 1},
                "activity": {"motion_total": 200, "active_hours": 10},
                "night_doors": {"count": 0},
                "alerts": {"count": 2},
                "vitals": {"heart_rate": {"count": 5, "min": 60, "max": 80, "mean": 70.4}},
            },
        )
    reports = daily_reports(db_session, caregiver, mine.id)
    assert list(reports["day"]) == [DAY, DAY - timedelta(days=1)]
    assert list(reports["in_bed_minutes"]) == [420.0, 380.5]
    assert reports["heart_rate_mean"].iloc[0] == 70.4
    assert reports["spo2_mean"].isna().all()
    # As the reports flow makes them (build_report): every section, then rendered in a language.
    made = make_report(db_session, mine.id, DAY + timedelta(days=1))
    views = care_reports(db_session, caregiver, mine.id, limit=1)
    assert [v.day for v in views] == [made.day]
    assert views[0].data == made.data
    assert "Mine" in views[0].subject and views[0].body
    korean = Viewer(caregiver.user_id, caregiver.username, "", caregiver.role, language="ko")
    assert care_report(db_session, korean, mine.id, made.day).subject != views[0].subject
    with pytest.raises(NotFoundError) as missing:
        care_report(db_session, caregiver, mine.id, DAY + timedelta(days=2))
    assert missing.value.key == "errors.reports.missing"
    with pytest.raises(AccessDenied):
        care_reports(db_session, caregiver, _other.id)
