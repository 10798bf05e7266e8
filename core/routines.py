"""Learned routine: each resident's usual inactivity gap per local hour of the day.

From the last DAYS (14) complete local days before a reference day, in the resident's timezone
(theirs, else their site's):

1. movements are the motion = 1 readings of the resident's devices, all rooms together;
2. a gap is the time between two consecutive movements; gaps longer than MAX_GAP (24 h) are
   dropped (a sensor offline or the resident away, not a habit);
3. for each local date and hour, the slot's longest gap is the longest gap that overlaps the
   hour (so a two-hour nap that starts at 13:50 counts for 13:00, 14:00 and 15:00);
4. usual_gap_minutes of an hour is the median of its slots' longest gaps over the days that
   have one, and `days` says how many did.

The inactivity rule (core.rules) alarms, when asked to use the routine, after usual gap x factor
without movement in the current local hour, instead of its fixed limit. Hours without any data
get no row, and the rule falls back to its fixed limit for them.
"""

from __future__ import annotations

import itertools
import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from core.care_report import day_span, resident_timezone
from core.timeutil import ensure_utc, utcnow
from models import Device, Reading, Resident, ResidentRoutine, in_service

log = logging.getLogger(__name__)

DAYS = 14
MAX_GAP = timedelta(hours=24)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class HourRoutine:
    """The usual longest gap of one local hour, and over how many days it was learned."""

    hour: int
    usual_gap_minutes: float
    days: int


def movements(session: Session, resident_id: int, start: datetime, end: datetime) -> list[datetime]:
    """Times of motion = 1 readings of the resident's devices, in order.

    Any registered (not quarantined) device of theirs that reports motion counts, as for the
    rules: ingest accepts the metric from every device type. A decommissioned device counts only
    for what it measured while in service, so a replaced sensor's history still teaches the
    routine but nothing stored under its id afterwards does.
    """
    return list(
        session.scalars(
            select(Reading.ts)
            .join(Device, Device.id == Reading.device_id)
            .where(
                Device.resident_id == resident_id,
                Device.quarantined.is_(False),
                or_(in_service(), Reading.ts < Device.decommissioned_at),
                Reading.metric == "motion",
                Reading.value >= 0.5,
                Reading.ts >= start,
                Reading.ts < end,
            )
            .order_by(Reading.ts)
            .distinct()
        )
    )


def slot_gaps(times: list[datetime], timezone: str) -> dict[tuple[date, int], float]:
    """Longest gap (minutes) overlapping each local (date, hour) slot, from movement times."""
    zone = ZoneInfo(timezone)
    longest: dict[tuple[date, int], float] = {}
    for before, after in itertools.pairwise(times):
        gap = after - before
        if gap <= timedelta(0) or gap > MAX_GAP:
            continue
        minutes = gap.total_seconds() / 60
        # Step an hour at a time in UTC from the start of the local hour the gap begins in, so
        # half-hour zones work and a DST change simply repeats or skips a local hour.
        cursor = before.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        cursor = cursor.astimezone(UTC)
        while cursor < after:
            local = cursor.astimezone(zone)
            key = (local.date(), local.hour)
            if minutes > longest.get(key, 0.0):
                longest[key] = minutes
            cursor += HOUR
    return longest


def learn(
    times: list[datetime], timezone: str, first_day: date, last_day: date
) -> list[HourRoutine]:
    """Median longest gap per local hour over slots dated first_day..last_day (inclusive)."""
    per_hour: dict[int, list[float]] = defaultdict(list)
    for (day, hour), minutes in slot_gaps(times, timezone).items():
        if first_day <= day <= last_day:
            per_hour[hour].append(minutes)
    return [
        HourRoutine(hour, round(statistics.median(values), 1), len(values))
        for hour, values in sorted(per_hour.items())
    ]


def learn_resident(
    session: Session, resident: Resident, today: date | None = None, days: int = DAYS
) -> list[HourRoutine]:
    """The routine of one resident from the `days` local days before `today` (their today)."""
    timezone = resident_timezone(session, resident)
    if today is None:
        today = utcnow().astimezone(ZoneInfo(timezone)).date()
    first_day = today - timedelta(days=days)
    last_day = today - timedelta(days=1)
    # A gap overlapping the first hours may have started the evening before: look back MAX_GAP.
    start = day_span(first_day, timezone).start.astimezone(UTC) - MAX_GAP
    end = day_span(last_day, timezone).end.astimezone(UTC)
    return learn(movements(session, resident.id, start, end), timezone, first_day, last_day)


def save_routine(
    session: Session, resident_id: int, routine: list[HourRoutine], now: datetime | None = None
) -> None:
    """Replace the resident's stored routine with this one."""
    now = ensure_utc(now or utcnow())
    session.execute(delete(ResidentRoutine).where(ResidentRoutine.resident_id == resident_id))
    session.add_all(
        ResidentRoutine(
            resident_id=resident_id,
            hour=item.hour,
            usual_gap_minutes=item.usual_gap_minutes,
            days=item.days,
            computed_at=now,
        )
        for item in routine
    )
    session.flush()


def update_resident(session: Session, resident_id: int, today: date | None = None) -> int:
    """Learn and store one resident's routine; returns how many hours it covers."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise LookupError(f"no resident {resident_id}")
    routine = learn_resident(session, resident, today)
    save_routine(session, resident_id, routine)
    log.debug("routine of resident %s: %d hours learned", resident_id, len(routine))
    return len(routine)


def routine_of(session: Session, resident_id: int) -> dict[int, float]:
    """Local hour -> usual gap in minutes, as stored (for pages and notebooks)."""
    rows = session.execute(
        select(ResidentRoutine.hour, ResidentRoutine.usual_gap_minutes).where(
            ResidentRoutine.resident_id == resident_id
        )
    ).all()
    return {hour: gap for hour, gap in rows}
