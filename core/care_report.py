"""The daily care report of a resident: their local day in figures, stored and sent to caregivers.

Day D is a calendar day in the resident's timezone (theirs, else their site's). Every time below
is local; "the night" is the one that ends on the morning of D. The figures:

sleep        the resident's bed sensors (bed_occupied), 20:00 on D-1 to 10:00 on D. Each reading
             keeps its state until the next reading, for at most HOLD (15 minutes: a silent
             sensor is not a sleeping resident). in_bed_minutes: minutes in state 1 inside the
             night; times_up: changes from 1 to 0 inside the night; readings: how many were used.
activity     motion = 1 readings of the resident's motion sensors during D, counted per room
             (the device's room, else the resident's, else "-"); active_hours: hours of D with
             at least one; readings: motion readings of any value (0: no data, not stillness).
vitals       heart_rate, spo2, body_temp_c from the resident's devices during D: count, min,
             max and mean (rounded to 0.1).
night_doors  door_opened events of the resident's devices from 22:00 on D-1 to 06:00 on D: count
             and local times (HH:MM); readings: door_open readings then (0 and no event: no data).
alerts       alerts about the resident opened during D: count, by severity, acknowledged,
             unacknowledged (never acknowledged, resolved or not), and the median minutes from
             opening to acknowledgement of the acknowledged ones (rounded to 0.1).
received     readings and events of the resident's devices from 20:00 on D-1 to the end of D: none
             at all is a day without data, and the message says so plainly.

A section without data says "no data" in the message rather than zeros (reports of version 1,
made before these counts were kept, are rendered as they were).

A report is stored once per resident and day (care_reports, upserted: re-making it keeps
sent_at), and queued in the notification outbox for each caregiver assigned to the resident and
each family user linked to them (FamilyLink), on each of their channels (and the in-app
inbox), in their language; quiet hours hold back
every channel but the inbox. sent_at records when it was queued; the outbox delivers it.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.contract.catalogue import DeviceType, EventType
from core.i18n import normalize_language, plural, translator
from core.notify.outbox import contacts
from core.notify.quiet_hours import quiet_until
from core.timeutil import ensure_utc, utcnow
from models import (
    Alert,
    CaregiverAssignment,
    CareReport,
    Device,
    Event,
    FamilyLink,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Reading,
    Resident,
    Site,
    User,
)
from models import Channel as ChannelKind

log = logging.getLogger(__name__)

REPORT_VERSION = 2
HOLD = timedelta(minutes=15)
SLEEP_FROM, SLEEP_TO = time(20, 0), time(10, 0)
DOORS_FROM, DOORS_TO = time(22, 0), time(6, 0)
VITALS = ("heart_rate", "spo2", "body_temp_c")
NO_ROOM = "-"


@dataclass(frozen=True)
class LocalSpan:
    """A span of local time, with its UTC bounds."""

    start: datetime
    end: datetime

    @property
    def utc(self) -> tuple[datetime, datetime]:
        """The span in UTC."""
        return self.start.astimezone(UTC), self.end.astimezone(UTC)


def resident_timezone(session: Session, resident: Resident) -> str:
    """The resident's timezone, else their site's."""
    if resident.timezone:
        return resident.timezone
    site = session.get(Site, resident.site_id)
    assert site is not None
    return site.timezone


def local_span(day: date, start: time, end: time, timezone: str) -> LocalSpan:
    """From `start` on `day` to `end` (the next day when `end` is not after `start`)."""
    zone = ZoneInfo(timezone)
    last_day = day if end > start else day + timedelta(days=1)
    return LocalSpan(
        datetime.combine(day, start, tzinfo=zone), datetime.combine(last_day, end, tzinfo=zone)
    )


def day_span(day: date, timezone: str) -> LocalSpan:
    """Local midnight to local midnight (23 or 25 hours on DST days)."""
    return local_span(day, time(0), time(0), timezone)


def due_day(now: datetime, timezone: str, delay: timedelta) -> date:
    """The last local day whose report is due: it ended at least `delay` ago."""
    local = (ensure_utc(now) - delay).astimezone(ZoneInfo(timezone))
    return local.date() - timedelta(days=1)


# --- the figures


def _devices(session: Session, resident: Resident) -> list[Device]:
    return list(session.scalars(select(Device).where(Device.resident_id == resident.id)))


def _ids(devices: Sequence[Device], kind: DeviceType | None = None) -> list[str]:
    return [d.id for d in devices if kind is None or d.type == kind.value]


def sleep_figures(session: Session, bed_ids: Sequence[str], night: LocalSpan) -> dict[str, Any]:
    """Minutes in bed and times up during the night (see the module docstring)."""
    start, end = night.utc
    rows = session.execute(
        select(Reading.ts, Reading.value)
        .where(
            Reading.device_id.in_(list(bed_ids)),
            Reading.metric == "bed_occupied",
            # A reading just before the night tells the state at its start.
            Reading.ts >= start - HOLD,
            Reading.ts < end,
        )
        .order_by(Reading.ts)
    ).all()
    in_bed = timedelta()
    times_up = 0
    for index, (ts, value) in enumerate(rows):
        held_until = ts + HOLD
        if index + 1 < len(rows):
            held_until = min(held_until, rows[index + 1][0])
        span_start, span_end = max(ts, start), min(held_until, end)
        if value >= 0.5 and span_end > span_start:
            in_bed += span_end - span_start
        if index > 0 and ts >= start and rows[index - 1][1] >= 0.5 and value < 0.5:
            times_up += 1
    return {
        "from": night.start.isoformat(),
        "to": night.end.isoformat(),
        "in_bed_minutes": round(in_bed.total_seconds() / 60, 1),
        "times_up": times_up,
        "readings": sum(1 for ts, _ in rows if ts >= start),
    }


def activity_figures(
    session: Session, motion: Sequence[Device], resident: Resident, day: LocalSpan
) -> dict[str, Any]:
    """Motion readings per room and the hours with any movement."""
    start, end = day.utc
    rooms = {d.id: d.room or resident.room or NO_ROOM for d in motion}
    rows = session.execute(
        select(Reading.device_id, Reading.ts).where(
            Reading.device_id.in_(list(rooms)),
            Reading.metric == "motion",
            Reading.value >= 0.5,
            Reading.ts >= start,
            Reading.ts < end,
        )
    ).all()
    zone = day.start.tzinfo
    per_room = Counter(rooms[device_id] for device_id, _ in rows)
    hours = {ts.astimezone(zone).replace(minute=0, second=0, microsecond=0) for _, ts in rows}
    return {
        "motion_by_room": dict(sorted(per_room.items())),
        "motion_total": len(rows),
        "active_hours": len(hours),
        "readings": _count_readings(session, list(rooms), ("motion",), day),
    }


def _count_readings(
    session: Session, device_ids: Sequence[str], metrics: Sequence[str] | None, span: LocalSpan
) -> int:
    """Readings of these devices (and metrics, if given) in the span: zero means no data."""
    if not device_ids:
        return 0
    start, end = span.utc
    query = select(func.count()).where(
        Reading.device_id.in_(list(device_ids)), Reading.ts >= start, Reading.ts < end
    )
    if metrics is not None:
        query = query.where(Reading.metric.in_(list(metrics)))
    return int(session.scalar(query) or 0)


def vitals_figures(session: Session, device_ids: Sequence[str], day: LocalSpan) -> dict[str, Any]:
    """Count, min, max and mean of each vital sign during the day (absent: no readings)."""
    start, end = day.utc
    rows = session.execute(
        select(
            Reading.metric,
            func.count(),
            func.min(Reading.value),
            func.max(Reading.value),
            func.avg(Reading.value),
        )
        .where(
            Reading.device_id.in_(list(device_ids)),
            Reading.metric.in_(VITALS),
            Reading.ts >= start,
            Reading.ts < end,
        )
        .group_by(Reading.metric)
    ).all()
    return {
        metric: {
            "count": int(count),
            "min": round(float(low), 1),
            "max": round(float(high), 1),
            "mean": round(float(mean), 1),
        }
        for metric, count, low, high, mean in sorted(rows)
    }


def night_door_figures(
    session: Session, device_ids: Sequence[str], night: LocalSpan
) -> dict[str, Any]:
    """Door openings during the night and their local times."""
    start, end = night.utc
    times = session.scalars(
        select(Event.ts)
        .where(
            Event.device_id.in_(list(device_ids)),
            Event.type == EventType.DOOR_OPENED.value,
            Event.ts >= start,
            Event.ts < end,
        )
        .order_by(Event.ts)
    ).all()
    zone = night.start.tzinfo
    return {
        "from": night.start.isoformat(),
        "to": night.end.isoformat(),
        "count": len(times),
        "times": [ts.astimezone(zone).strftime("%H:%M") for ts in times],
        "readings": _count_readings(session, device_ids, ("door_open",), night),
    }


def received_figures(
    session: Session, device_ids: Sequence[str], span: LocalSpan
) -> dict[str, int]:
    """Everything the resident's devices sent in the span (readings and events)."""
    start, end = span.utc
    events = 0
    if device_ids:
        events = int(
            session.scalar(
                select(func.count()).where(
                    Event.device_id.in_(list(device_ids)), Event.ts >= start, Event.ts < end
                )
            )
            or 0
        )
    return {"readings": _count_readings(session, device_ids, None, span), "events": events}


def alert_figures(session: Session, resident: Resident, day: LocalSpan) -> dict[str, Any]:
    """Alerts about the resident opened during the day, and how fast they were acknowledged."""
    start, end = day.utc
    alerts = session.scalars(
        select(Alert).where(
            Alert.resident_id == resident.id, Alert.opened_at >= start, Alert.opened_at < end
        )
    ).all()
    waits = [
        (a.acknowledged_at - a.opened_at).total_seconds() / 60
        for a in alerts
        if a.acknowledged_at is not None
    ]
    return {
        "count": len(alerts),
        "by_severity": dict(sorted(Counter(a.severity.value for a in alerts).items())),
        "acknowledged": len(waits),
        "unacknowledged": len(alerts) - len(waits),
        "median_ack_minutes": round(statistics.median(waits), 1) if waits else None,
    }


def build_report(session: Session, resident: Resident, day: date) -> dict[str, Any]:
    """Every figure of the resident's day, as stored in care_reports.data."""
    timezone = resident_timezone(session, resident)
    devices = _devices(session, resident)
    whole_day = day_span(day, timezone)
    night = local_span(day - timedelta(days=1), SLEEP_FROM, SLEEP_TO, timezone)
    doors_night = local_span(day - timedelta(days=1), DOORS_FROM, DOORS_TO, timezone)
    motion = [d for d in devices if d.type == DeviceType.MOTION_SENSOR.value]
    return {
        "version": REPORT_VERSION,
        "resident_id": resident.id,
        "day": day.isoformat(),
        "timezone": timezone,
        "from": whole_day.start.isoformat(),
        "to": whole_day.end.isoformat(),
        "sleep": sleep_figures(session, _ids(devices, DeviceType.BED_SENSOR), night),
        "activity": activity_figures(session, motion, resident, whole_day),
        "vitals": vitals_figures(session, _ids(devices), whole_day),
        "night_doors": night_door_figures(session, _ids(devices), doors_night),
        "alerts": alert_figures(session, resident, whole_day),
        "received": received_figures(session, _ids(devices), LocalSpan(night.start, whole_day.end)),
    }


# --- storing and reading


def save_report(session: Session, resident_id: int, day: date, data: dict[str, Any]) -> CareReport:
    """Insert or replace the report of (resident, day); sent_at is kept."""
    report = session.scalar(
        select(CareReport)
        .where(CareReport.resident_id == resident_id, CareReport.day == day)
        .with_for_update()
    )
    if report is None:
        report = CareReport(resident_id=resident_id, day=day, data=data, generated_at=utcnow())
        session.add(report)
    else:
        report.data = data
        report.generated_at = utcnow()
    session.flush()
    return report


def make_report(session: Session, resident_id: int, day: date) -> CareReport:
    """Compute and store one resident's report for one day."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise LookupError(f"no resident {resident_id}")
    return save_report(session, resident_id, day, build_report(session, resident, day))


def get_report(session: Session, resident_id: int, day: date) -> CareReport | None:
    """The stored report of a resident's day, if made."""
    return session.scalar(
        select(CareReport).where(CareReport.resident_id == resident_id, CareReport.day == day)
    )


def list_reports(session: Session, resident_id: int, limit: int = 30) -> list[CareReport]:
    """A resident's reports, newest day first (the app's report page)."""
    return list(
        session.scalars(
            select(CareReport)
            .where(CareReport.resident_id == resident_id)
            .order_by(CareReport.day.desc())
            .limit(limit)
        )
    )


def active_resident_ids(session: Session) -> list[int]:
    """Ids of the active residents, in order."""
    return list(
        session.scalars(select(Resident.id).where(Resident.active.is_(True)).order_by(Resident.id))
    )


def due_reports(session: Session, now: datetime, delay: timedelta) -> list[tuple[int, date]]:
    """(resident, day) of every active resident whose last finished day has no report yet."""
    due: list[tuple[int, date]] = []
    for resident in session.scalars(
        select(Resident).where(Resident.active.is_(True)).order_by(Resident.id)
    ):
        day = due_day(now, resident_timezone(session, resident), delay)
        if get_report(session, resident.id, day) is None:
            due.append((resident.id, day))
    return due


# --- sending


def _duration(t: Callable[..., str], minutes: float) -> str:
    hours, rest = divmod(round(minutes), 60)
    return t("report.duration", hours=hours, minutes=rest)


def day_has_data(data: dict[str, Any]) -> bool:
    """Whether the resident's devices sent anything for the report (version 1: assumed so)."""
    received = data.get("received")
    return received is None or received["readings"] + received["events"] > 0


def section_has_data(data: dict[str, Any], section: str) -> bool:
    """Whether a section (sleep, activity, night_doors) rests on data rather than silence."""
    figures = data[section]
    if section == "sleep":
        return bool(figures["readings"] or figures["in_bed_minutes"])
    if section == "night_doors":
        return bool(figures.get("readings", 1) or figures["count"])
    return bool(figures.get("readings", 1))  # activity; version 1 reports kept no count


def _vitals(t: Callable[..., str], vitals: dict[str, Any]) -> str:
    parts = []
    for metric in VITALS:
        label = t(f"report.metric.{metric}")
        if metric not in vitals:
            parts.append(t("report.vital_no_data", metric=label))
            continue
        v = vitals[metric]
        parts.append(
            t(
                "report.vital",
                metric=label,
                min=f"{v['min']:g}",
                max=f"{v['max']:g}",
                mean=f"{v['mean']:g}",
            )
        )
    return "; ".join(parts)


def render_report(data: dict[str, Any], name: str, language: str) -> tuple[str, str]:
    """Subject and body of the report message in a language: one sentence per section."""
    t = translator(language)
    alerts = data["alerts"]
    median = alerts["median_ack_minutes"]
    alerts_line = t(
        "report.alerts",
        alerts=alerts["count"],
        acknowledged=alerts["acknowledged"],
        median_ack=t("report.minutes", minutes=f"{median:g}") if median is not None else "-",
    )
    subject = t("report.subject", name=name, day=data["day"])
    intro = t("report.intro", name=name, day=data["day"])
    if not day_has_data(data):
        return subject, "\n\n".join([intro, t("report.no_data_day", name=name), alerts_line])
    sleep, activity, doors = data["sleep"], data["activity"], data["night_doors"]
    lines = [
        t(
            "report.sleep",
            in_bed=_duration(t, sleep["in_bed_minutes"]),
            times_up=plural(t, "report.times_up", sleep["times_up"]),
        )
        if section_has_data(data, "sleep")
        else t("report.sleep_no_data"),
        t(
            "report.activity",
            motion=plural(t, "report.movements", activity["motion_total"]),
            active_hours=plural(t, "report.hours", activity["active_hours"]),
            rooms=", ".join(f"{room} {n}" for room, n in activity["motion_by_room"].items())
            or t("report.none"),
        )
        if section_has_data(data, "activity")
        else t("report.activity_no_data"),
        t("report.vitals", vitals=_vitals(t, data["vitals"]))
        if data["vitals"]
        else t("report.vitals_no_data"),
        t(
            "report.doors",
            doors=plural(t, "report.door_times", doors["count"]),
            door_times=", ".join(doors["times"]) or t("report.none"),
        )
        if section_has_data(data, "night_doors")
        else t("report.doors_no_data"),
        alerts_line,
    ]
    return subject, intro + "\n\n" + "\n".join(lines)


def _recipients(session: Session, resident_id: int) -> list[User]:
    """The resident's active caregivers and the family users linked to them."""
    caregivers = select(CaregiverAssignment.user_id).where(
        CaregiverAssignment.resident_id == resident_id
    )
    family = select(FamilyLink.user_id).where(FamilyLink.resident_id == resident_id)
    return list(
        session.scalars(
            select(User)
            .where(
                or_(User.id.in_(caregivers), User.id.in_(family)),
                User.active.is_(True),
            )
            .order_by(User.id)
        )
    )


# A daily report is several screens long: it goes to the channels made for reading, not to SMS
# (cut to a few paid segments) nor to a phone's push alarm (ntfy is for alerts).
REPORT_CHANNELS = frozenset(ChannelKind) - {ChannelKind.SMS, ChannelKind.NTFY}


def report_idempotency_key(report: CareReport, user_id: int, channel: str, address: str) -> str:
    """Unique per report, recipient, channel and address: a report is never queued twice."""
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    return f"report:{report.id}:u{user_id}:{channel}:{digest}"


def queue_report(
    session: Session, report: CareReport, now: datetime | None = None
) -> list[Notification]:
    """Queue the report for the resident's caregivers and family users; marks it sent."""
    now = ensure_utc(now or utcnow())
    resident = session.get(Resident, report.resident_id)
    assert resident is not None
    timezone = resident_timezone(session, resident)
    queued: list[Notification] = []
    for user in _recipients(session, resident.id):
        language = normalize_language(user.language)
        subject, body = render_report(report.data, resident.name, language)
        for channel, address in contacts(session, user, REPORT_CHANNELS):
            key = report_idempotency_key(report, user.id, channel.value, address)
            if session.scalar(select(Notification.id).where(Notification.idempotency_key == key)):
                continue
            held = None
            if channel is not ChannelKind.INBOX:
                held = quiet_until(now, user.quiet_start, user.quiet_end, user.timezone or timezone)
            notification = Notification(
                idempotency_key=key,
                alert_id=None,
                recipient_id=user.id,
                channel=channel,
                address=address,
                purpose=NotificationPurpose.REPORT,
                status=NotificationStatus.HELD if held else NotificationStatus.PENDING,
                subject=subject[:300],
                body=body,
                payload={
                    "purpose": NotificationPurpose.REPORT.value,
                    "report_id": report.id,
                    "resident_id": resident.id,
                    "day": report.day.isoformat(),
                    "language": language,
                    "recipient": {"id": user.id, "name": user.display_name},
                },
                attempts=0,
                next_attempt_at=held or now,
                created_at=now,
            )
            session.add(notification)
            queued.append(notification)
    report.sent_at = now
    session.flush()
    if not queued:
        log.info(
            "care report %s (resident %s): no caregiver or family to send it to",
            report.id,
            resident.id,
        )
    return queued
