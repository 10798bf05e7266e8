"""The learned routine: usual longest gap between movements per local hour, last 14 days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import routines
from core.contract.catalogue import DeviceType
from models import Reading, ResidentRoutine
from tests.factories import Factory

SEOUL = ZoneInfo("Asia/Seoul")
TODAY = date(2026, 2, 20)


def test_usual_gaps_per_hour(db_session: Session, factory: Factory) -> None:
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site)
    kitchen = factory.device(DeviceType.MOTION_SENSOR, resident=resident, room="kitchen").id
    bedroom = factory.device(DeviceType.MOTION_SENSOR, resident=resident, room="bedroom").id
    stranger = factory.device(DeviceType.MOTION_SENSOR, resident=factory.resident(site)).id
    rows = []
    # Fifteen days: movement every 10 minutes from 07:00 to 21:50 (alternating rooms), except
    # a nap with no movement between 13:50 and 16:00; "no motion" readings in between.
    for back in range(15, 0, -1):
        day = TODAY - timedelta(days=back)
        t = datetime(day.year, day.month, day.day, 7, tzinfo=SEOUL)
        end = t.replace(hour=21, minute=50)
        n = 0
        while t <= end:
            wall = (t.hour, t.minute)
            if not (13, 50) < wall < (16, 0):
                device = kitchen if n % 2 else bedroom
                rows.append(
                    {"device_id": device, "metric": "motion", "ts": t.astimezone(UTC), "value": 1.0}
                )
                rows.append(
                    {
                        "device_id": device,
                        "metric": "motion",
                        "ts": (t + timedelta(minutes=5)).astimezone(UTC),
                        "value": 0.0,
                    }
                )
            n += 1
            t += timedelta(minutes=10)
    # Someone else's sensor moving at night does not shorten this resident's night.
    rows.append(
        {
            "device_id": stranger,
            "metric": "motion",
            "ts": datetime(2026, 2, 15, 3, tzinfo=SEOUL).astimezone(UTC),
            "value": 1.0,
        }
    )
    db_session.execute(insert(Reading), rows)

    assert routines.update_resident(db_session, resident.id, TODAY) == 24
    stored = {
        r.hour: (r.usual_gap_minutes, r.days)
        for r in db_session.scalars(
            select(ResidentRoutine).where(ResidentRoutine.resident_id == resident.id)
        )
    }
    assert stored[10] == (10.0, 14)
    # The nap (13:50 to 16:00) overlaps 13:00, 14:00 and 15:00.
    assert stored[13] == stored[14] == stored[15] == (130.0, 14)
    assert stored[16] == (10.0, 14)
    # The night (21:50 to 07:00) overlaps 21:00 to 06:00; the last night has not ended yet
    # within the 14 days, so 22:00 and 23:00 have 13 of them.
    assert stored[3] == (550.0, 14)
    assert stored[21] == (550.0, 14)
    assert stored[22] == (550.0, 13)
    assert stored[7] == (10.0, 14)
    assert routines.routine_of(db_session, resident.id)[14] == 130.0

    # Learning again replaces the routine (nothing learned from an empty fortnight).
    assert routines.update_resident(db_session, resident.id, TODAY + timedelta(days=40)) == 0
    assert routines.routine_of(db_session, resident.id) == {}


def test_decommissioned_sensor_counts_only_while_in_service(
    db_session: Session, factory: Factory
) -> None:
    """A replaced sensor's past movements teach the routine; nothing under its id afterwards."""
    resident = factory.resident(factory.site(timezone="Asia/Seoul"))
    retired_at = datetime(2026, 2, 10, 12, tzinfo=UTC)
    old = factory.device(
        DeviceType.MOTION_SENSOR, resident=resident, decommissioned_at=retired_at
    ).id
    new = factory.device(DeviceType.MOTION_SENSOR, resident=resident).id
    times = {
        old: [retired_at - timedelta(hours=2), retired_at + timedelta(hours=1)],
        new: [retired_at + timedelta(hours=3)],
    }
    db_session.execute(
        insert(Reading),
        [
            {"device_id": device, "metric": "motion", "ts": ts, "value": 1.0}
            for device, stamps in times.items()
            for ts in stamps
        ],
    )
    day = timedelta(days=1)
    assert routines.movements(db_session, resident.id, retired_at - day, retired_at + day) == [
        retired_at - timedelta(hours=2),
        retired_at + timedelta(hours=3),
    ]
