"""The care report of a resident's known day matches figures computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import care_report
from core.contract.catalogue import DeviceType
from models import (
    Alert,
    AlertStatus,
    Channel,
    ContactChannel,
    Event,
    Notification,
    NotificationPurpose,
    Reading,
    Resident,
    RuleKind,
    Severity,
)
from tests.factories import Factory

SEOUL = ZoneInfo("Asia/Seoul")
DAY = date(2026, 1, 5)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Seoul wall-clock time in January 2026, as UTC."""
    return datetime(2026, 1, day, hour, minute, tzinfo=SEOUL).astimezone(UTC)


def reading(device: str, metric: str, ts: datetime, value: float) -> dict:
    return {"device_id": device, "metric": metric, "ts": ts, "value": value}


def alert(resident_id: int, n: int, opened: datetime, acked: datetime | None) -> Alert:
    return Alert(
        kind=RuleKind.THRESHOLD,
        severity=Severity.CRITICAL if n == 1 else Severity.WARNING,
        status=AlertStatus.ACKNOWLEDGED if acked else AlertStatus.OPEN,
        subject_type="resident",
        subject_id=str(resident_id),
        dedupe_key=f"test:{resident_id}:{n}",
        resident_id=resident_id,
        title=f"alert {n}",
        opened_at=opened,
        last_seen_at=opened,
        acknowledged_at=acked,
    )


def known_day(session: Session, factory: Factory) -> int:
    """A resident in Seoul whose 5 January 2026 is known minute by minute."""
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site, room="101")
    bed = factory.device(DeviceType.BED_SENSOR, resident=resident, room="bedroom").id
    bedroom = factory.device(DeviceType.MOTION_SENSOR, resident=resident, room="bedroom").id
    living = factory.device(DeviceType.MOTION_SENSOR, resident=resident, room="living room").id
    wear = factory.device(DeviceType.WEARABLE, resident=resident).id
    door = factory.device(DeviceType.DOOR_SENSOR, resident=resident).id
    other = factory.device(DeviceType.WEARABLE, resident=factory.resident(site)).id

    rows = [reading(bed, "bed_occupied", local(4, 21, 50), 0.0)]
    # In bed every 5 min from 22:00 until 07:00, up between 02:00 and 02:20; the sensor was
    # silent from 04:00 to 05:00 (so the 03:55 reading counts for 15 minutes only).
    t = local(4, 22)
    while t <= local(5, 7):
        wall = t.astimezone(SEOUL).time()
        if not time(4) <= wall < time(5):
            awake = time(2) <= wall < time(2, 20) or t == local(5, 7)
            rows.append(reading(bed, "bed_occupied", t, 0.0 if awake else 1.0))
        t += timedelta(minutes=5)
    # Motion: 3 in the bedroom, 3 in the living room, in hours 8, 9, 12 and 18; the rest is
    # a no-motion reading or outside the local day.
    for device, hh, mm in [
        (bedroom, 8, 0),
        (bedroom, 8, 1),
        (bedroom, 9, 30),
        (living, 12, 0),
        (living, 12, 30),
        (living, 18, 45),
    ]:
        rows.append(reading(device, "motion", local(5, hh, mm), 1.0))
    rows += [
        reading(living, "motion", local(5, 13), 0.0),
        reading(living, "motion", local(4, 23, 59), 1.0),
        reading(living, "motion", local(6, 0, 0), 1.0),
    ]
    # Vitals: heart rate 60, 72, 90 (wearable) and 54 (bed sensor); SpO2 97 and 95.
    rows += [
        reading(wear, "heart_rate", local(5, 9), 60.0),
        reading(wear, "heart_rate", local(5, 14), 72.0),
        reading(wear, "heart_rate", local(5, 23, 59), 90.0),
        reading(bed, "heart_rate", local(5, 3), 54.0),
        reading(wear, "heart_rate", local(6, 0, 1), 200.0),
        reading(wear, "spo2", local(5, 10), 97.0),
        reading(wear, "spo2", local(5, 11), 95.0),
        reading(other, "heart_rate", local(5, 12), 150.0),
    ]
    session.execute(insert(Reading), rows)
    # Door opened at night at 23:10 and 03:05; 21:00 and 06:30 are outside the night.
    for day, hh, mm in [(4, 21, 0), (4, 23, 10), (5, 3, 5), (5, 6, 30)]:
        session.add(
            Event(
                device_id=door,
                site_id=site.id,
                resident_id=resident.id,
                type="door_opened",
                ts=local(day, hh, mm),
                data={},
            )
        )
    # Alerts opened that day: acknowledged after 4 and 10 minutes, one not acknowledged;
    # one from the evening before does not count.
    session.add_all(
        [
            alert(resident.id, 1, local(5, 9), local(5, 9, 4)),
            alert(resident.id, 2, local(5, 13), local(5, 13, 10)),
            alert(resident.id, 3, local(5, 20), None),
            alert(resident.id, 4, local(4, 23), local(4, 23, 30)),
        ]
    )
    session.flush()
    return resident.id


def test_known_day_matches_hand_computed_figures(db_session: Session, factory: Factory) -> None:
    resident_id = known_day(db_session, factory)
    data = care_report.make_report(db_session, resident_id, DAY).data

    assert data["day"] == "2026-01-05" and data["timezone"] == "Asia/Seoul"
    assert data["from"] == "2026-01-05T00:00:00+09:00"
    # 22:00-02:00 (240) + 02:20-04:10 (110) + 05:00-07:00 (120) minutes.
    assert data["sleep"]["in_bed_minutes"] == 470.0
    assert data["sleep"]["times_up"] == 2  # 02:00, and 07:00
    assert data["sleep"]["readings"] == 1 + 109 - 12
    assert data["activity"] == {
        "motion_by_room": {"bedroom": 3, "living room": 3},
        "motion_total": 6,
        "active_hours": 4,
        "readings": 7,  # and one no-motion reading: stillness, not missing data
    }
    assert data["vitals"] == {
        "heart_rate": {"count": 4, "min": 54.0, "max": 90.0, "mean": 69.0},
        "spo2": {"count": 2, "min": 95.0, "max": 97.0, "mean": 96.0},
    }
    assert data["night_doors"]["count"] == 2
    assert data["night_doors"]["times"] == ["23:10", "03:05"]
    assert data["received"]["events"] == 4  # every door opening from 20:00 on the 4th
    assert data["alerts"] == {
        "count": 3,
        "by_severity": {"critical": 1, "warning": 2},
        "acknowledged": 2,
        "unacknowledged": 1,
        "median_ack_minutes": 7.0,
    }


def test_report_is_stored_once_and_sent_once(db_session: Session, factory: Factory) -> None:
    resident_id = known_day(db_session, factory)
    caregiver = factory.user(residents=(db_session.get(Resident, resident_id),), language="ko")
    db_session.add_all(
        [
            ContactChannel(user_id=caregiver.id, channel=Channel.EMAIL, address="c@example.org"),
            # Alert-only channels: a report is not cut into paid text messages or a push alarm.
            ContactChannel(user_id=caregiver.id, channel=Channel.SMS, address="+821012345678"),
            ContactChannel(user_id=caregiver.id, channel=Channel.NTFY, address="care-night-4f2a"),
        ]
    )
    db_session.flush()
    first = care_report.make_report(db_session, resident_id, DAY)
    queued = care_report.queue_report(db_session, first, now=local(6, 9))
    assert {(n.channel, n.purpose) for n in queued} == {
        (Channel.INBOX, NotificationPurpose.REPORT),
        (Channel.EMAIL, NotificationPurpose.REPORT),
    }
    assert queued[0].subject.startswith("일일 보고서")
    assert "7시간 50분" in (queued[0].body or "")
    # Made again (say, after late data): the same row, still marked sent; queueing adds nothing.
    again = care_report.make_report(db_session, resident_id, DAY)
    assert again.id == first.id and again.sent_at is not None
    assert care_report.queue_report(db_session, again) == []
    count = db_session.scalars(
        select(Notification).where(Notification.purpose == NotificationPurpose.REPORT)
    ).all()
    assert len(count) == 2


def test_reports_fall_due_after_local_midnight_and_delay(
    db_session: Session, factory: Factory
) -> None:
    resident_id = known_day(db_session, factory)
    delay = timedelta(hours=1)
    before = [
        d
        for r, d in care_report.due_reports(db_session, local(6, 0, 30), delay)
        if r == resident_id
    ]
    after = [
        d
        for r, d in care_report.due_reports(db_session, local(6, 1, 30), delay)
        if r == resident_id
    ]
    assert before == [date(2026, 1, 4)] and after == [DAY]
    care_report.make_report(db_session, resident_id, DAY)
    assert resident_id not in dict(care_report.due_reports(db_session, local(6, 1, 30), delay))


def test_local_day_spans_dst_changes() -> None:
    span = care_report.day_span(date(2026, 3, 29), "Europe/Berlin")
    start, end = span.utc
    assert end - start == timedelta(hours=23)


def test_message_words_counts_in_english_and_korean(db_session: Session, factory: Factory) -> None:
    data = care_report.make_report(db_session, known_day(db_session, factory), DAY).data
    _, body = care_report.render_report(data, "Kim", "en")
    assert "Sleep (20:00 to 10:00): 7 h 50 min in bed, up 2 times." in body
    assert "Activity: 6 movements in 4 hours (bedroom 3, living room 3)." in body
    assert "Door opened at night (22:00 to 06:00): 2 times (23:10, 03:05)." in body
    assert "body temperature (°C): no data" in body
    once = {
        **data,
        "sleep": {**data["sleep"], "times_up": 1},
        "activity": {**data["activity"], "motion_total": 1, "active_hours": 1},
        "night_doors": {**data["night_doors"], "count": 1, "times": ["23:10"]},
    }
    _, body = care_report.render_report(once, "Kim", "en")
    assert "in bed, up 1 time." in body and "1 movement in 1 hour (" in body
    assert "(22:00 to 06:00): 1 time (23:10)." in body
    _, body = care_report.render_report(once, "Kim", "ko")
    assert "일어난 횟수 1회" in body and "1시간 동안 움직임 1회" in body


def test_day_without_any_data_says_so(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site(timezone="Asia/Seoul"))
    factory.device(DeviceType.WEARABLE, resident=resident)
    factory.device(DeviceType.BED_SENSOR, resident=resident)
    data = care_report.make_report(db_session, resident.id, DAY).data
    assert data["received"] == {"readings": 0, "events": 0}
    assert not care_report.day_has_data(data)
    _, english = care_report.render_report(data, "Kim", "en")
    assert "No data arrived from Kim's devices" in english
    assert "0 h 0 min" not in english and "up 0 times" not in english and "Alerts: 0" in english
    _, korean = care_report.render_report(data, "김", "ko")
    assert "김 님의 기기에서 받은 데이터가 없습니다" in korean and "0시간 0분" not in korean


def test_sections_without_data_say_no_data(db_session: Session, factory: Factory) -> None:
    """Only a wearable's heart rate arrived: sleep, activity and the door say "no data"."""
    resident = factory.resident(factory.site(timezone="Asia/Seoul"))
    wear = factory.device(DeviceType.WEARABLE, resident=resident).id
    factory.device(DeviceType.BED_SENSOR, resident=resident)
    factory.device(DeviceType.MOTION_SENSOR, resident=resident)
    factory.device(DeviceType.DOOR_SENSOR, resident=resident)
    db_session.execute(insert(Reading), [reading(wear, "heart_rate", local(5, 9), 61.0)])
    data = care_report.make_report(db_session, resident.id, DAY).data
    _, body = care_report.render_report(data, "Kim", "en")
    assert "Sleep (20:00 to 10:00): no data." in body
    assert "Activity: no data." in body
    assert "Door at night (22:00 to 06:00): no data." in body
    assert "heart rate (bpm) 61 to 61 (mean 61); blood oxygen (%): no data" in body
    _, korean = care_report.render_report(data, "김", "ko")
    assert "수면 (20:00~10:00): 데이터 없음." in korean and "활동: 데이터 없음." in korean


def test_reports_made_before_the_counts_render_as_they_did(
    db_session: Session, factory: Factory
) -> None:
    data = care_report.make_report(db_session, known_day(db_session, factory), DAY).data
    version_1 = {key: value for key, value in data.items() if key != "received"}
    version_1["activity"] = {k: v for k, v in data["activity"].items() if k != "readings"}
    version_1["night_doors"] = {k: v for k, v in data["night_doors"].items() if k != "readings"}
    _, body = care_report.render_report(version_1, "Kim", "en")
    assert "no data" not in body.replace("body temperature (°C): no data", "")
    assert "Activity: 6 movements in 4 hours" in body
