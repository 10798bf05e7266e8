"""The caregiver's overview: one card per visible resident, worst state first.

A card says what needs a person now: unresolved alerts about the resident, when and where they
last moved, their latest vital signs with a trend, and their devices that are not working.
Everything comes from six queries whatever the number of residents (no query per resident), each
served by an index: the latest reading of a device is a backward scan of the readings primary
key (device_id, ts, metric) that stops at the first match, and the previous hour's mean is one
probe of the rollups primary key.

Above the cards: the unresolved site-level alerts the viewer sees (a gas leak or flame in the
kitchen: about the site, not one resident; who sees them is core.use_cases.alerts.alert_clause).
While a critical one is unresolved, no resident of that site is "all well": their cards say so
and count as needing attention.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from core.access import Viewer, resident_clause
from core.contract.catalogue import DEVICE_METRICS, DeviceType
from core.device_state import is_silent, silent_clause
from core.rollups import floor_bucket
from core.timeutil import ensure_utc, utcnow
from core.use_cases.alerts import UNRESOLVED, alert_clause, site_level_clause
from models import (
    Alert,
    AlertStatus,
    Device,
    DeviceStatus,
    Reading,
    Resident,
    Rollup,
    RollupPeriod,
    Severity,
    Site,
    in_service,
)

# The vital signs a card shows, in this order.
VITALS: tuple[str, ...] = ("heart_rate", "spo2", "body_temp_c")
# A change smaller than this (latest value against the last closed hour's mean) is "steady".
TREND_TOLERANCE: dict[str, float] = {"heart_rate": 5.0, "spo2": 1.0, "body_temp_c": 0.3}
# Readings older than this are not "latest" any more (the card says the vitals are missing).
VITALS_FRESH = timedelta(hours=6)
# How far back the last movement is looked for (older: "no movement for over a week").
ACTIVITY_LOOKBACK = timedelta(days=7)
# The demo's battery rule warns below 15 %.
BATTERY_LOW_PCT = 15

SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class CareState(StrEnum):
    """How a resident is doing, worst first."""

    CRITICAL = "critical"  # an open (unacknowledged) critical alert
    ATTENTION = "attention"  # any other unresolved alert, or a device not working
    OK = "ok"  # all well


STATE_RANK = {CareState.CRITICAL: 0, CareState.ATTENTION: 1, CareState.OK: 2}


class Trend(StrEnum):
    """Latest value against the last closed hour's mean."""

    UP = "up"
    DOWN = "down"
    STEADY = "steady"


class Problem(StrEnum):
    """What is wrong with a device, most serious first."""

    OFFLINE = "offline"
    NEVER_SEEN = "never_seen"
    SILENT = "silent"
    BATTERY_LOW = "battery_low"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class AlertBrief:
    """An unresolved alert about the resident, as a card shows it."""

    id: uuid.UUID
    kind: str
    severity: Severity
    status: AlertStatus
    title: str
    details: dict[str, Any]
    opened_at: datetime
    occurrences: int


@dataclass(frozen=True)
class SiteAlert:
    """An unresolved alert about a site, not a resident: what, where and when (site's zone)."""

    id: uuid.UUID
    site_id: str
    site_name: str
    timezone: str
    kind: str
    severity: Severity
    status: AlertStatus
    title: str
    details: dict[str, Any]
    device_id: str | None
    device_type: str | None
    room: str | None
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int


@dataclass(frozen=True)
class Vital:
    """The latest value of a vital sign and where it is heading."""

    metric: str
    value: float
    ts: datetime
    trend: Trend | None  # None: no closed hour to compare with


@dataclass(frozen=True)
class DeviceProblem:
    """A device of the resident that is not working as it should."""

    device_id: str
    type: str | None
    room: str | None
    problems: tuple[Problem, ...]
    battery: int | None
    last_seen: datetime | None


@dataclass(frozen=True)
class ResidentCard:
    """Everything the overview shows about one resident."""

    resident_id: int
    name: str
    room: str | None
    timezone: str
    state: CareState
    alerts: tuple[AlertBrief, ...] = ()  # worst first
    last_movement: datetime | None = None
    movement_room: str | None = None
    vitals: tuple[Vital, ...] = ()  # in VITALS order, only those with a recent reading
    device_problems: tuple[DeviceProblem, ...] = ()
    site_alert: bool = False  # a critical alert about the resident's site is unresolved

    @property
    def sort_key(self) -> tuple[Any, ...]:
        """Worst state first; then the worst alert, waiting longest; then by name."""
        if self.alerts:
            worst = self.alerts[0]
            return (
                STATE_RANK[self.state],
                SEVERITY_RANK[worst.severity],
                worst.opened_at.timestamp(),
                self.name,
            )
        return (STATE_RANK[self.state], 9, 0.0, self.name)


@dataclass(frozen=True)
class Overview:
    """The cards, worst first, and how many residents are in each state."""

    cards: list[ResidentCard]
    counts: dict[CareState, int] = field(default_factory=dict)
    as_of: datetime | None = None
    site_alerts: list[SiteAlert] = field(default_factory=list)  # critical first, then oldest

    @property
    def critical_site_alerts(self) -> list[SiteAlert]:
        """The unresolved critical site-level alerts (the page's banner)."""
        return [a for a in self.site_alerts if a.severity is Severity.CRITICAL]


def _visible_residents(viewer: Viewer) -> Select[Any]:
    return select(Resident.id).where(Resident.active.is_(True), resident_clause(viewer))


def _residents(session: Session, viewer: Viewer) -> list[tuple[int, str, str | None, str, str]]:
    rows = session.execute(
        select(
            Resident.id,
            Resident.name,
            Resident.room,
            func.coalesce(Resident.timezone, Site.timezone),
            Resident.site_id,
        )
        .join(Site, Site.id == Resident.site_id)
        .where(Resident.active.is_(True), resident_clause(viewer))
        .order_by(Resident.name, Resident.id)
    ).all()
    return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def site_alerts(session: Session, viewer: Viewer) -> list[SiteAlert]:
    """Unresolved site-level alerts the viewer sees, critical first, then the longest waiting."""
    rows = session.execute(
        select(Alert, Site.name, Site.timezone, Device.type, Device.room)
        .join(Site, Site.id == Alert.site_id)
        .outerjoin(Device, Device.id == Alert.device_id)
        .where(alert_clause(viewer), site_level_clause(), Alert.status.in_(UNRESOLVED))
    ).all()
    found = [
        SiteAlert(
            id=alert.id,
            site_id=str(alert.site_id),
            site_name=site_name,
            timezone=timezone,
            kind=str(alert.kind),
            severity=Severity(alert.severity),
            status=AlertStatus(alert.status),
            title=alert.title,
            details=dict(alert.details or {}),
            device_id=alert.device_id,
            device_type=device_type,
            room=room,
            opened_at=ensure_utc(alert.opened_at),
            last_seen_at=ensure_utc(alert.last_seen_at),
            occurrences=int(alert.occurrences),
        )
        for alert, site_name, timezone, device_type, room in rows
    ]
    found.sort(key=lambda a: (SEVERITY_RANK[a.severity], a.opened_at, str(a.id)))
    return found


def _alerts(session: Session, visible: Select[Any]) -> dict[int, list[AlertBrief]]:
    # An alert about a resident's device (offline, battery) is theirs too, as on the alerts
    # page; without it the overview said "all well" while the alerts page counted it.
    about = func.coalesce(Alert.resident_id, Device.resident_id)
    rows = session.execute(
        select(
            about,
            Alert.id,
            Alert.kind,
            Alert.severity,
            Alert.status,
            Alert.title,
            Alert.details,
            Alert.opened_at,
            Alert.occurrences,
        )
        .outerjoin(Device, Device.id == Alert.device_id)
        .where(Alert.status != AlertStatus.RESOLVED, about.in_(visible))
    ).all()
    found: dict[int, list[AlertBrief]] = defaultdict(list)
    for row in rows:
        found[int(row[0])].append(
            AlertBrief(
                id=row[1],
                kind=str(row[2]),
                severity=Severity(row[3]),
                status=AlertStatus(row[4]),
                title=row[5],
                details=dict(row[6] or {}),
                opened_at=ensure_utc(row[7]),
                occurrences=int(row[8]),
            )
        )
    for alerts in found.values():
        # Unacknowledged before acknowledged, then by severity, then the longest waiting.
        alerts.sort(
            key=lambda a: (
                a.status is not AlertStatus.OPEN,
                SEVERITY_RANK[a.severity],
                a.opened_at,
            )
        )
    return found


def _last_movement(
    session: Session, visible: Select[Any], now: datetime
) -> dict[int, tuple[datetime, str | None]]:
    latest = (
        select(Reading.ts)
        .where(
            Reading.device_id == Device.id,
            Reading.metric == "motion",
            Reading.value >= 0.5,
            Reading.ts >= now - ACTIVITY_LOOKBACK,
            Reading.ts <= now,
        )
        .order_by(Reading.ts.desc())
        .limit(1)
        .correlate(Device)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Device.resident_id, Device.room, Resident.room, latest.label("ts"))
        .join(Resident, Resident.id == Device.resident_id)
        .where(
            Device.type == DeviceType.MOTION_SENSOR.value,
            Device.resident_id.in_(visible),
        )
    ).all()
    found: dict[int, tuple[datetime, str | None]] = {}
    for resident_id, device_room, resident_room, ts in rows:
        if ts is None:
            continue
        ts = ensure_utc(ts)
        if resident_id not in found or ts > found[resident_id][0]:
            found[int(resident_id)] = (ts, device_room or resident_room)
    return found


def _reports(metric: str) -> list[str]:
    return [kind.value for kind, metrics in DEVICE_METRICS.items() if metric in metrics]


def _vital_rows(visible: Select[Any], now: datetime) -> Select[Any]:
    """(resident, device, metric, latest ts, latest value, last closed hour's mean) per pair."""
    closed_hour = floor_bucket(now, RollupPeriod.HOUR) - timedelta(hours=1)
    selects = []
    for metric in VITALS:

        def newest(column: Any, metric: str = metric) -> Any:
            return (
                select(column)
                .where(
                    Reading.device_id == Device.id,
                    Reading.metric == metric,
                    Reading.ts >= now - VITALS_FRESH,
                    Reading.ts <= now,
                )
                .order_by(Reading.ts.desc())
                .limit(1)
                .correlate(Device)
                .scalar_subquery()
            )

        previous = (
            select(Rollup.mean)
            .where(
                Rollup.device_id == Device.id,
                Rollup.metric == metric,
                Rollup.period == RollupPeriod.HOUR,
                Rollup.bucket <= closed_hour,
                Rollup.bucket >= closed_hour - timedelta(hours=2),
            )
            .order_by(Rollup.bucket.desc())
            .limit(1)
            .correlate(Device)
            .scalar_subquery()
        )
        selects.append(
            select(
                Device.resident_id.label("resident_id"),
                literal(metric).label("metric"),
                newest(Reading.ts).label("ts"),
                newest(Reading.value).label("value"),
                previous.label("previous"),
            ).where(Device.type.in_(_reports(metric)), Device.resident_id.in_(visible))
        )
    return union_all(*selects)  # type: ignore[return-value]


def trend_of(metric: str, value: float, previous: float | None) -> Trend | None:
    """Up, down or steady against the previous mean, within the metric's tolerance."""
    if previous is None:
        return None
    tolerance = TREND_TOLERANCE.get(metric, 0.0)
    if value - previous > tolerance:
        return Trend.UP
    if previous - value > tolerance:
        return Trend.DOWN
    return Trend.STEADY


def _vitals(session: Session, visible: Select[Any], now: datetime) -> dict[int, list[Vital]]:
    best: dict[tuple[int, str], Vital] = {}
    for resident_id, metric, ts, value, previous in session.execute(_vital_rows(visible, now)):
        if ts is None or value is None:
            continue
        vital = Vital(
            metric=metric,
            value=float(value),
            ts=ensure_utc(ts),
            trend=trend_of(metric, float(value), None if previous is None else float(previous)),
        )
        key = (int(resident_id), metric)
        if key not in best or vital.ts > best[key].ts:
            best[key] = vital  # a wearable and a bed sensor both measure heart rate: newest wins
    found: dict[int, list[Vital]] = defaultdict(list)
    for metric in VITALS:
        for (resident_id, name), vital in best.items():
            if name == metric:
                found[resident_id].append(vital)
    return found


def problems_of(
    status: DeviceStatus | str | None,
    last_seen: datetime | None,
    battery: int | None,
    quarantined: bool,
    now: datetime,
    device_type: str | None = None,
) -> tuple[Problem, ...]:
    """What is wrong with a device (empty: nothing); silent is judged by its type's interval."""
    found: list[Problem] = []
    if status == DeviceStatus.OFFLINE:
        found.append(Problem.OFFLINE)
    elif last_seen is None:
        found.append(Problem.NEVER_SEEN)
    elif is_silent(status, last_seen, device_type, now):
        found.append(Problem.SILENT)
    if battery is not None and battery < BATTERY_LOW_PCT:
        found.append(Problem.BATTERY_LOW)
    if quarantined:
        found.append(Problem.QUARANTINED)
    return tuple(found)


def _problem_filter(now: datetime) -> ColumnElement[bool]:
    return or_(
        Device.status == DeviceStatus.OFFLINE,
        Device.last_seen.is_(None),
        silent_clause(now),
        Device.battery < BATTERY_LOW_PCT,
        Device.quarantined.is_(True),
    )


def _device_problems(
    session: Session, visible: Select[Any], now: datetime
) -> dict[int, list[DeviceProblem]]:
    rows = session.execute(
        select(
            Device.resident_id,
            Device.id,
            Device.type,
            Device.room,
            Device.status,
            Device.last_seen,
            Device.battery,
            Device.quarantined,
        )
        .where(Device.resident_id.in_(visible), in_service(), _problem_filter(now))
        .order_by(Device.id)
    ).all()
    found: dict[int, list[DeviceProblem]] = defaultdict(list)
    for resident_id, device_id, kind, room, status, last_seen, battery, quarantined in rows:
        problems = problems_of(status, last_seen, battery, bool(quarantined), now, kind)
        if problems:
            found[int(resident_id)].append(
                DeviceProblem(
                    device_id=device_id,
                    type=kind,
                    room=room,
                    problems=problems,
                    battery=battery,
                    last_seen=ensure_utc(last_seen) if last_seen else None,
                )
            )
    return found


def state_of(
    alerts: Sequence[AlertBrief],
    device_problems: Sequence[DeviceProblem],
    site_alert: bool = False,
) -> CareState:
    """Critical: an open critical alert; attention: other alerts, a broken device, a site alert."""
    if any(a.severity is Severity.CRITICAL and a.status is AlertStatus.OPEN for a in alerts):
        return CareState.CRITICAL
    if alerts or device_problems or site_alert:
        return CareState.ATTENTION
    return CareState.OK


def count_states(cards: Iterable[ResidentCard]) -> dict[CareState, int]:
    """How many residents are in each state (every state present, maybe 0)."""
    counts = dict.fromkeys(CareState, 0)
    for card in cards:
        counts[card.state] += 1
    return counts


def resident_overview(session: Session, viewer: Viewer, now: datetime | None = None) -> Overview:
    """A card per resident the viewer may see, worst state first (caregivers: theirs only)."""
    now = ensure_utc(now or utcnow())
    on_site = site_alerts(session, viewer)
    sites_in_danger = {a.site_id for a in on_site if a.severity is Severity.CRITICAL}
    residents = _residents(session, viewer)
    if not residents:
        return Overview(cards=[], counts=count_states([]), as_of=now, site_alerts=on_site)
    visible = _visible_residents(viewer)
    alerts = _alerts(session, visible)
    movement = _last_movement(session, visible, now)
    vitals = _vitals(session, visible, now)
    problems = _device_problems(session, visible, now)
    cards = []
    for resident_id, name, room, timezone, site_id in residents:
        own_alerts = alerts.get(resident_id, [])
        own_problems = problems.get(resident_id, [])
        moved = movement.get(resident_id)
        in_danger = site_id in sites_in_danger
        cards.append(
            ResidentCard(
                resident_id=resident_id,
                name=name,
                room=room,
                timezone=timezone,
                state=state_of(own_alerts, own_problems, in_danger),
                alerts=tuple(own_alerts),
                last_movement=moved[0] if moved else None,
                movement_room=moved[1] if moved else None,
                vitals=tuple(vitals.get(resident_id, [])),
                device_problems=tuple(own_problems),
                site_alert=in_danger,
            )
        )
    cards.sort(key=lambda card: card.sort_key)
    return Overview(cards=cards, counts=count_states(cards), as_of=now, site_alerts=on_site)
