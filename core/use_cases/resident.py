"""One resident in depth: their day (events, alerts, room to room), vitals over time, daily reports.

Every function checks first that the viewer may see the resident (caregivers: only assigned
ones); a resident they may not see raises AccessDenied, the same as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import Viewer, check_resident, resident_clause
from core.care_report import day_span, get_report, list_reports, render_report
from core.contract.catalogue import DeviceType, EventType
from core.errors import NotFoundError
from core.rollups import load_rollups
from core.timeutil import ensure_utc, utcnow
from core.use_cases.overview import VITALS
from models import Alert, CareReport, Device, Event, Reading, Resident, RollupPeriod, Site

# Ranges up to this long are drawn from raw readings; longer ones from hourly rollups.
RAW_RANGE_LIMIT = timedelta(hours=24)
# Raw series longer than this many points are averaged per minute (a day at 10 s is 8,640).
RAW_POINTS_LIMIT = 2_000
# Motion readings in the same room less than this apart belong to the same stay.
STAY_GAP = timedelta(minutes=10)
# Events a timeline lists (motion events are shown as stays in rooms instead).
TIMELINE_SKIP_EVENTS = frozenset({EventType.MOTION.value})

TIMELINE_COLUMNS = ["ts", "kind", "code", "severity", "status", "title", "details", "room"]
STAY_COLUMNS = ["room", "start", "end", "readings"]
SERIES_COLUMNS = ["metric", "device_id", "device_type", "ts", "value", "low", "high"]
REPORT_COLUMNS = [
    "day",
    "in_bed_minutes",
    "times_up",
    "motion_total",
    "active_hours",
    "night_doors",
    "alerts",
    "heart_rate_mean",
    "spo2_mean",
    "body_temp_c_mean",
]


@dataclass(frozen=True)
class ResidentChoice:
    """A resident the viewer may open."""

    id: int
    name: str
    room: str | None
    site_name: str | None = None


@dataclass(frozen=True)
class ResidentProfile:
    """Who the resident is, where, and their devices."""

    id: int
    name: str
    room: str | None
    site_name: str
    timezone: str
    birth_year: int | None
    active_start: time
    active_end: time
    care_notes: str | None
    devices: pd.DataFrame  # id, type, room, status, battery, last_seen, quarantined


@dataclass(frozen=True)
class DayTimeline:
    """A resident's local day: what happened (events, alerts) and where they moved."""

    day: date
    timezone: str
    start: datetime  # UTC
    end: datetime  # UTC
    items: pd.DataFrame  # TIMELINE_COLUMNS, ts ascending (UTC)
    stays: pd.DataFrame  # STAY_COLUMNS: time spent moving about in a room (UTC)


@dataclass(frozen=True)
class VitalsSeries:
    """Vital signs over a time range: raw readings, or hourly means with min and max."""

    start: datetime
    end: datetime
    resolution: str  # "raw", "minute" (raw averaged per minute) or "hour" (rollups)
    frame: pd.DataFrame  # SERIES_COLUMNS; low/high are the bucket's min/max (NaN for raw)


def resident_choices(session: Session, viewer: Viewer) -> list[ResidentChoice]:
    """The active residents the viewer may open, by name."""
    rows = session.execute(
        select(Resident.id, Resident.name, Resident.room, Site.name)
        .outerjoin(Site, Site.id == Resident.site_id)
        .where(Resident.active.is_(True), resident_clause(viewer))
        .order_by(Resident.name, Resident.id)
    ).all()
    return [ResidentChoice(int(r[0]), r[1], r[2], r[3]) for r in rows]


def _timezone(session: Session, resident: Resident) -> tuple[str, str]:
    site = session.get(Site, resident.site_id)
    assert site is not None
    return resident.timezone or site.timezone, site.name


def _devices(session: Session, resident_id: int) -> list[Device]:
    return list(
        session.scalars(
            select(Device).where(Device.resident_id == resident_id).order_by(Device.type, Device.id)
        )
    )


def resident_profile(session: Session, viewer: Viewer, resident_id: int) -> ResidentProfile:
    """The resident and their devices (AccessDenied unless the viewer may see them)."""
    resident = check_resident(session, viewer, resident_id)
    timezone, site_name = _timezone(session, resident)
    devices = pd.DataFrame(
        [
            (d.id, d.type, d.room, str(d.status), d.battery, d.last_seen, d.quarantined)
            # Decommissioned devices leave the profile; their past readings stay in the charts.
            for d in _devices(session, resident_id)
            if d.decommissioned_at is None
        ],
        columns=["id", "type", "room", "status", "battery", "last_seen", "quarantined"],
    )
    return ResidentProfile(
        id=resident.id,
        name=resident.name,
        room=resident.room,
        site_name=site_name,
        timezone=timezone,
        birth_year=resident.birth_year,
        active_start=resident.active_start,
        active_end=resident.active_end,
        care_notes=resident.care_notes,
        devices=devices,
    )


def local_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date where the resident lives."""
    return ensure_utc(now or utcnow()).astimezone(ZoneInfo(timezone)).date()


def stays_from_motion(rows: list[tuple[datetime, str]], gap: timedelta = STAY_GAP) -> pd.DataFrame:
    """Motion readings (ts, room), in time order, merged into stays per room (room to room)."""
    stays: list[list[Any]] = []
    for ts, room in rows:
        last = stays[-1] if stays else None
        if last is not None and last[0] == room and ts - last[2] <= gap:
            last[2] = ts
            last[3] += 1
        else:
            stays.append([room, ts, ts, 1])
    return pd.DataFrame(stays, columns=STAY_COLUMNS)


def day_timeline(session: Session, viewer: Viewer, resident_id: int, day: date) -> DayTimeline:
    """Events, alerts and room-to-room motion of the resident's local `day`."""
    resident = check_resident(session, viewer, resident_id)
    timezone, _ = _timezone(session, resident)
    start, end = day_span(day, timezone).utc
    devices = _devices(session, resident_id)
    rooms = {d.id: d.room or resident.room or "-" for d in devices}
    items: list[tuple[Any, ...]] = []
    for event in session.scalars(
        select(Event)
        .where(Event.resident_id == resident_id, Event.ts >= start, Event.ts < end)
        .order_by(Event.ts)
    ):
        if event.type in TIMELINE_SKIP_EVENTS:
            continue
        items.append(
            (
                ensure_utc(event.ts),
                "event",
                event.type,
                None,
                None,
                None,
                dict(event.data or {}),
                rooms.get(event.device_id, resident.room),
            )
        )
    for alert in session.scalars(
        select(Alert)
        .where(Alert.resident_id == resident_id, Alert.opened_at >= start, Alert.opened_at < end)
        .order_by(Alert.opened_at)
    ):
        items.append(
            (
                ensure_utc(alert.opened_at),
                "alert",
                str(alert.kind),
                str(alert.severity),
                str(alert.status),
                alert.title,
                dict(alert.details or {}),
                rooms.get(alert.device_id or "", resident.room),
            )
        )
    items.sort(key=lambda item: item[0])
    motion_ids = [d.id for d in devices if d.type == DeviceType.MOTION_SENSOR.value]
    motion: list[tuple[datetime, str]] = []
    if motion_ids:
        motion = [
            (ensure_utc(ts), rooms[device_id])
            for device_id, ts in session.execute(
                select(Reading.device_id, Reading.ts)
                .where(
                    Reading.device_id.in_(motion_ids),
                    Reading.metric == "motion",
                    Reading.value >= 0.5,
                    Reading.ts >= start,
                    Reading.ts < end,
                )
                .order_by(Reading.ts)
            )
        ]
    return DayTimeline(
        day=day,
        timezone=timezone,
        start=start,
        end=end,
        items=pd.DataFrame(items, columns=TIMELINE_COLUMNS),
        stays=stays_from_motion(motion),
    )


def _raw_series(
    session: Session,
    devices: dict[str, str | None],
    metrics: tuple[str, ...],
    start: datetime,
    end: datetime,
) -> tuple[pd.DataFrame, str]:
    rows = session.execute(
        select(Reading.metric, Reading.device_id, Reading.ts, Reading.value)
        .where(
            Reading.device_id.in_(list(devices)),
            Reading.metric.in_(metrics),
            Reading.ts >= start,
            Reading.ts < end,
        )
        .order_by(Reading.metric, Reading.device_id, Reading.ts)
    ).all()
    frame = pd.DataFrame(rows, columns=["metric", "device_id", "ts", "value"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    resolution = "raw"
    if not frame.empty and frame.groupby(["metric", "device_id"]).size().max() > RAW_POINTS_LIMIT:
        frame = (
            frame.groupby(["metric", "device_id", pd.Grouper(key="ts", freq="1min")])["value"]
            .mean()
            .dropna()
            .reset_index()
        )
        resolution = "minute"
    frame["low"] = float("nan")
    frame["high"] = float("nan")
    return frame, resolution


def vitals_series(
    session: Session,
    viewer: Viewer,
    resident_id: int,
    start: datetime,
    end: datetime,
    metrics: tuple[str, ...] = VITALS,
) -> VitalsSeries:
    """The resident's vital signs in [start, end): raw up to RAW_RANGE_LIMIT, else hourly."""
    check_resident(session, viewer, resident_id)
    start, end = ensure_utc(start), ensure_utc(end)
    devices = {d.id: d.type for d in _devices(session, resident_id)}
    if not devices:
        return VitalsSeries(start, end, "raw", pd.DataFrame(columns=SERIES_COLUMNS))
    if end - start <= RAW_RANGE_LIMIT:
        frame, resolution = _raw_series(session, devices, metrics, start, end)
    else:
        rollups = load_rollups(
            session, period=RollupPeriod.HOUR, start=start, end=end, device_ids=list(devices)
        )
        rollups = rollups[rollups["metric"].isin(metrics)]
        frame = pd.DataFrame(
            {
                "metric": rollups["metric"],
                "device_id": rollups["device_id"],
                "ts": rollups["bucket"],
                "value": rollups["mean"],
                "low": rollups["min"],
                "high": rollups["max"],
            }
        )
        resolution = "hour"
    frame["device_type"] = frame["device_id"].map(devices)
    return VitalsSeries(start, end, resolution, frame[SERIES_COLUMNS].reset_index(drop=True))


def _mean(vitals: dict[str, Any], metric: str) -> float | None:
    figures = vitals.get(metric)
    return None if not figures else figures.get("mean")


def daily_reports(
    session: Session, viewer: Viewer, resident_id: int, limit: int = 14
) -> pd.DataFrame:
    """The figures of the resident's last `limit` daily reports, newest day first."""
    check_resident(session, viewer, resident_id)
    rows = []
    for report in list_reports(session, resident_id, limit=limit):
        data = report.data or {}
        sleep, activity = data.get("sleep", {}), data.get("activity", {})
        vitals = data.get("vitals", {})
        rows.append(
            (
                report.day,
                sleep.get("in_bed_minutes"),
                sleep.get("times_up"),
                activity.get("motion_total"),
                activity.get("active_hours"),
                data.get("night_doors", {}).get("count"),
                data.get("alerts", {}).get("count"),
                _mean(vitals, "heart_rate"),
                _mean(vitals, "spo2"),
                _mean(vitals, "body_temp_c"),
            )
        )
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


@dataclass(frozen=True)
class ReportView:
    """A stored daily care report: its figures and the text the family reads, in a language."""

    day: date
    generated_at: datetime
    sent_at: datetime | None
    data: dict[str, Any]
    subject: str
    body: str


def _report_view(report: CareReport, name: str, language: str) -> ReportView:
    subject, body = render_report(report.data or {}, name, language)
    return ReportView(
        report.day, report.generated_at, report.sent_at, dict(report.data or {}), subject, body
    )


def care_reports(
    session: Session, viewer: Viewer, resident_id: int, limit: int = 30
) -> list[ReportView]:
    """The resident's last `limit` daily reports, newest day first, in the viewer's language."""
    resident = check_resident(session, viewer, resident_id)
    return [
        _report_view(r, resident.name, viewer.language)
        for r in list_reports(session, resident_id, limit=limit)
    ]


def care_report(session: Session, viewer: Viewer, resident_id: int, day: date) -> ReportView:
    """The resident's report of one local day; NotFoundError when none was made."""
    resident = check_resident(session, viewer, resident_id)
    report = get_report(session, resident_id, day)
    if report is None:
        raise NotFoundError(
            f"No report of resident {resident_id} for {day}.",
            key="errors.reports.missing",
            day=day.isoformat(),
        )
    return _report_view(report, resident.name, viewer.language)
