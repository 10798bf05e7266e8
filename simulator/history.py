"""Weeks of demo history, offline: the device simulator played over past days into the database.

No broker: every message the simulation publishes goes through ingest's own parser
(ingest.parse.apply_message) into batches that ingest's SQL sink writes in bulk, idempotently.
What ingest does live with the wall clock is done here with the simulated clock instead:

- messages are parsed as received at their simulated time (device last_seen and status follow,
  and each status change is stored in device_status_changes as it happens);
- critical events open their alerts through ingest's instant rules (CriticalEventAlerts) at the
  event's time, and the event rows say they were received then; their live follow-ups
  (notification delivery, valve commands) are not run for the past;
- windowed rules (threshold, inactivity, night exit, battery) are replayed over the stored data
  with the rules backtest, and device offline is judged every 5 simulated minutes, as the
  engine's tick would, from the stored status history (what each device's status was and since
  when) and when each device was last heard; what they find is raised through the alert
  lifecycle at its historical time;
- demo caregivers acknowledge and resolve those alerts at plausible delays, a few of them as
  false alarms with a note; alerts of the last hours are left open, as they would be.

Then rollups and daily care reports are computed over the period. The run is recorded in the
job watermark 'seed.history' (per site: the covered range), so running it again adds nothing;
asking for more days than covered extends the history backwards.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.orm import Session

from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.care_report import day_span, get_report, make_report, resident_timezone
from core.contract.catalogue import DeviceType
from core.contract.topics import TopicKind
from core.db import make_session_factory, session_scope
from core.rollups import Window, backfill_windows, rollup_window
from core.rules import evaluate as ev
from core.rules.backtest import MAX_DAYS, RuleDraft, backtest
from core.rules.describe import describe_rule
from core.rules.episodes import FIRES, EpisodeBook, Transition
from core.rules.instant import AfterCommit, CriticalEventAlerts, StoredEvent
from core.rules.params import DeviceOfflineParams, RuleParamsError, parse_params
from core.rules.scope import covers
from core.timeutil import ensure_utc, utcnow
from ingest.batch import Batch
from ingest.parse import Limits, apply_message
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import (
    Alert,
    AlertRule,
    AlertStatus,
    CaregiverAssignment,
    Device,
    DeviceStatusChange,
    Event,
    JobWatermark,
    Reading,
    Resident,
    Role,
    RollupPeriod,
    RuleKind,
    Severity,
    Site,
    User,
)
from simulator.errors import SimulatorError
from simulator.scenarios import Scenario, ScenarioSpec, resolve_scenario
from simulator.simulation import Simulation
from simulator.site_registry import SiteSpec, load_site

log = logging.getLogger(__name__)

HISTORY_JOB = "seed.history"
DEFAULT_DAYS = 14
# Wearables, motion and bed sensors report every 2 minutes in the history (wearables every 10 s
# live): weeks of data in about a minute, while rollups, reports and rules see the same picture.
DEFAULT_INTERVAL = 120.0
FLUSH_ROWS = 20_000  # rows per write batch (one transaction each)
OFFLINE_TICK = timedelta(minutes=5)  # the engine ticks every minute; the backtest every 5
# Alerts opened this close to the end are left for the live demo's caregivers to handle.
LEAVE_OPEN = timedelta(hours=3)
# Windowed kinds replayed with the backtest (device offline is watched during the simulation).
REPLAYED_KINDS = (
    RuleKind.THRESHOLD,
    RuleKind.INACTIVITY,
    RuleKind.NIGHT_EXIT,
    RuleKind.BATTERY_LOW,
)

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class HistoryResult:
    """What a history run did (all zero when the range was covered already)."""

    site_id: str
    start: datetime
    end: datetime
    skipped: bool = False
    messages: int = 0
    readings: int = 0
    events: int = 0
    scenarios: list[str] = field(default_factory=list)
    alerts_opened: int = 0
    repeats: int = 0
    acknowledged: int = 0
    resolved: int = 0
    false_alarms: int = 0
    rollup_rows: int = 0
    reports: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# --- the range


def _floor_hour(value: datetime) -> datetime:
    return ensure_utc(value).replace(minute=0, second=0, microsecond=0)


def covered_range(session: Session, site_id: str) -> tuple[datetime, datetime, bool] | None:
    """The range a previous run covered for the site: (start, end, finished), if any."""
    mark = session.get(JobWatermark, HISTORY_JOB)
    entry = ((mark.details or {}).get("sites") or {}).get(site_id) if mark else None
    if not entry:
        return None
    return (
        ensure_utc(datetime.fromisoformat(entry["start"])),
        ensure_utc(datetime.fromisoformat(entry["end"])),
        bool(entry.get("done")),
    )


def _record_range(
    session: Session, site_id: str, start: datetime, end: datetime, *, done: bool, seed: int
) -> None:
    mark = session.get(JobWatermark, HISTORY_JOB, with_for_update=True)
    if mark is None:
        mark = JobWatermark(job=HISTORY_JOB, watermark=end, details={})
        session.add(mark)
    sites = dict((mark.details or {}).get("sites") or {})
    sites[site_id] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "done": done,
        "seed": seed,
    }
    mark.details = {**(mark.details or {}), "sites": sites}
    mark.watermark = max(ensure_utc(mark.watermark), end) if mark.watermark else end
    session.flush()


def _first_reading(session: Session, device_ids: list[str]) -> datetime | None:
    """The earliest stored reading of these devices (one index lookup each)."""
    found: list[datetime] = []
    for device_id in device_ids:
        first = session.scalar(select(func.min(Reading.ts)).where(Reading.device_id == device_id))
        if first is not None:
            found.append(ensure_utc(first))
    return min(found) if found else None


def plan_range(
    session: Session, site: SiteSpec, days: int, now: datetime
) -> tuple[datetime, datetime] | None:
    """[start, end) still to generate: `days` before the last whole hour (or before the live data,
    or before what an earlier run covered); None when that is covered already."""
    end = _floor_hour(now)
    covered = covered_range(session, site.id)
    if covered is not None:
        end = covered[0]  # extend backwards only
    else:
        first = _first_reading(session, [d.id for d in site.devices])
        if first is not None:
            end = min(end, _floor_hour(first))
    start = _floor_hour(now) - timedelta(days=days)
    return (start, end) if start < end else None


def _backdate_registry(session: Session, site_id: str, start: datetime) -> None:
    """The site, its residents and devices were there during the history (installed before it)."""
    for model, column in ((Site, Site.id), (Resident, Resident.site_id), (Device, Device.site_id)):
        session.execute(
            update(model)
            .where(column == site_id, model.created_at > start)
            .values(created_at=start)
            .execution_options(synchronize_session=False)
        )


# --- scenarios over the period


def _at_local(start: datetime, zone: ZoneInfo, day: int, hour: float) -> timedelta:
    midnight = datetime.combine(start.astimezone(zone).date(), time(0), tzinfo=zone)
    moment = (midnight + timedelta(days=day)).astimezone(UTC) + timedelta(hours=hour)
    return moment - start


def plan_scenarios(site: SiteSpec, start: datetime, end: datetime, seed: int) -> list[Scenario]:
    """Incidents spread over the days: falls, panic presses, night exits, silent and flapping
    devices, heart-rate swings, a long still spell (deterministic for a seed)."""
    rng = random.Random(f"{seed}:history:{site.id}")  # noqa: S311 - reproducible demo data
    zone = ZoneInfo(site.timezone)
    span = end - start
    days = math.ceil(span / timedelta(days=1)) + 1
    count = len(site.residents)
    if not count:
        return []
    # (name, every n days, first day, local hours range, duration, device type for device kinds)
    plan: list[tuple[str, int, int, tuple[float, float], timedelta | None, DeviceType | None]] = [
        ("fall", 3, 0, (8, 20), timedelta(minutes=15), None),
        ("night_exit", 4, 0, (23, 26), timedelta(minutes=20), None),
        ("panic", 4, 1, (9, 19), None, None),
        ("device_offline", 5, 1, (10, 16), timedelta(hours=2), DeviceType.ENV_SENSOR),
        ("threshold_flapping", 7, 1, (14, 18), timedelta(minutes=20), None),
        ("flapping", 6, 2, (11, 15), timedelta(minutes=10), DeviceType.MOTION_SENSOR),
        ("long_inactivity", 7, 2, (9.5, 11), timedelta(hours=5), None),
    ]
    scenarios: list[Scenario] = []
    for name, every, first, (low, high), duration, device_type in plan:
        for day in range(first, days, every):
            hour = rng.uniform(low, high)
            resident = site.residents[rng.randrange(count)]
            offset = _at_local(start, zone, day, hour)
            if offset < timedelta(0):
                # The period began after that hour of its first local day: the next day at the
                # same hour instead, so a short history still has its incidents whatever the
                # time of day it is seeded.
                offset = _at_local(start, zone, day + 1, hour)
            if offset < timedelta(0) or offset + (duration or timedelta(0)) >= span:
                continue
            target = str(resident.index)
            if device_type is not None:
                device = resident.devices.get(device_type)
                if device is None:
                    continue
                target = device.id
            text = f"{name}:{target}@{int(offset.total_seconds())}s"
            spec = ScenarioSpec(text, name, target, offset, None, duration)
            try:
                scenarios.append(resolve_scenario(spec, site))
            except SimulatorError as error:
                log.info("history scenario %s skipped: %s", text, error)
    return scenarios


# --- the simulation into the database


class _HistoricalInstantRules:
    """Ingest's instant rules, with the event's own time as when it was received."""

    def __init__(self, inner: CriticalEventAlerts) -> None:
        self.inner = inner

    def on_events(self, session: Session, events: list[StoredEvent]) -> AfterCommit | None:
        """Stamp the events received at their time, then open their alerts then."""
        table = Event.__table__
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(received_at=bindparam("b_at")),
            [{"b_id": e.id, "b_at": e.ts} for e in events],
        )
        self.inner.on_events(session, [replace(e, received_at=e.ts) for e in events])
        return None  # deliveries and valve commands are for live events only


@dataclass
class _Firing:
    """A windowed rule's finding to raise (or, with clear=True, to auto-resolve) at a time."""

    at: datetime
    rule: AlertRule
    subject: Subject
    label: str
    details: dict[str, Any]
    clear: bool = False


class _OfflineWatch:
    """The device-offline rules judged every few simulated minutes from what ingest recorded."""

    def __init__(
        self,
        rules: list[tuple[AlertRule, DeviceOfflineParams]],
        site: SiteSpec,
        registered: dict[str, datetime],
    ) -> None:
        self.rules = [
            (
                rule,
                params,
                [
                    d
                    for d in site.devices
                    if covers(
                        rule, site_id=site.id, resident_id=d.resident_id, device_type=d.type.value
                    )
                ],
            )
            for rule, params in rules
        ]
        self.site = site
        self.registered = registered
        self.last_seen: dict[str, datetime] = {}
        # Each device's status and since when, read back from device_status_changes.
        self.status: dict[str, tuple[str, datetime]] = {}
        self._loaded_until: datetime | None = None
        self.book = EpisodeBook()  # keys: (rule id, device id)
        self.firings: list[_Firing] = []

    def note(self, batch: Batch) -> None:
        """Take in when devices were last heard (as ingest writes last_seen: never backwards)."""
        for device_id, (_site, seen) in batch.seen.items():
            known = self.last_seen.get(device_id)
            self.last_seen[device_id] = seen if known is None else max(known, seen)

    def load_statuses(self, engine: Engine, until: datetime) -> None:
        """Read the status changes stored up to `until` (everything before it is written)."""
        c = DeviceStatusChange.__table__.c
        query = select(c.device_id, c.status, c.at).where(
            c.device_id.in_([d.id for d in self.site.devices]), c.at <= until
        )
        if self._loaded_until is not None:
            query = query.where(c.at > self._loaded_until)
        with engine.connect() as connection:
            for device_id, status, at in connection.execute(query.order_by(c.at)):
                self.status[device_id] = (str(status), ensure_utc(at))
        self._loaded_until = until

    def tick(self, now: datetime) -> None:
        """One engine tick for the device-offline rules."""
        for rule, params, devices in self.rules:
            for device in devices:
                status, since = self.status.get(device.id, ("unknown", None))
                state = ev.DeviceState(
                    device.id,
                    status=status,
                    status_since=since,
                    last_seen=self.last_seen.get(device.id),
                    registered_at=self.registered.get(device.id),
                )
                finding = ev.device_offline_one(("device", device.id), state, params, now)
                if finding is None:
                    continue
                key = (rule.id, device.id)
                transition = self.book.step(
                    key, finding, now, momentary=False, auto_resolve=bool(rule.auto_resolve)
                )
                subject = Subject("device", device.id, self.site.id, device.resident_id, device.id)
                if transition is Transition.CLEAR:
                    self.firings.append(_Firing(now, rule, subject, device.id, {}, clear=True))
                elif transition in FIRES:
                    details = {**finding.details, "device_id": device.id}
                    details["episode_start"] = (finding.since or now).isoformat()
                    self.firings.append(_Firing(now, rule, subject, device.id, details))


class _Recorder:
    """The simulation's sink: each message parsed as ingest parses it, written in bulk."""

    def __init__(self, sql: SqlSink, limits: Limits, watch: _OfflineWatch) -> None:
        self.sql = sql
        self.limits = limits
        self.watch = watch
        self.batch = Batch()
        self.now = datetime.now(UTC)
        self.sim: Simulation | None = None
        self.readings = 0
        self.events = 0
        self._now_ts = -1.0
        self._status_suffix = "/" + TopicKind.STATUS.value
        self._online: dict[str, bool] = {}  # each device's status as last written
        self.status_changed = False  # a change waits in the batch

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Parse one message as received at the simulated time; write when the batch is full."""
        assert self.sim is not None
        if self.sim.now_ts != self._now_ts:
            self._now_ts = self.sim.now_ts
            self.now = datetime.fromtimestamp(self._now_ts, UTC)
        if topic.endswith(self._status_suffix):
            self._status(topic, payload)
            return
        apply_message(self.batch, topic, payload, self.now, self.limits)
        if len(self.batch.readings) >= FLUSH_ROWS:
            self.flush()

    def _status(self, topic: str, payload: bytes) -> None:
        # A batch keeps one status per device: a change must be written before the next one
        # replaces it, or the stored history would miss a short outage.
        device = topic.rsplit("/", 2)[-2]
        pending = self.batch.statuses.get(device)
        if pending is not None and pending.status.online != self._online.get(device):
            self.flush()
        apply_message(self.batch, topic, payload, self.now, self.limits)
        row = self.batch.statuses.get(device)
        if row is not None and row.status.online != self._online.get(device):
            self.status_changed = True

    def flush(self) -> None:
        """Write the batch through ingest's SQL sink (one transaction)."""
        batch, self.batch = self.batch, Batch()
        self.watch.note(batch)
        self.status_changed = False
        if batch.is_empty():
            return
        self.sql.write(batch)
        for device, row in batch.statuses.items():
            self._online[device] = row.status.online
        self.readings += len(batch.readings)
        self.events += len(batch.events)


def _simulate(
    engine: Engine,
    site: SiteSpec,
    start: datetime,
    end: datetime,
    *,
    seed: int,
    interval: float,
    scenarios: list[Scenario],
    watch: _OfflineWatch,
    root: str,
    default_timezone: str,
    progress: Progress,
) -> tuple[int, int, int]:
    instant = CriticalEventAlerts(deliver=lambda _ids: None, dispatch=lambda _ids: None)
    cache = RegistryCache(refresh_seconds=3600)
    with engine.connect() as connection:
        cache.load(connection)
    sql = SqlSink(engine, cache, default_timezone, _HistoricalInstantRules(instant))
    # Timestamps are judged against simulated time, so the history is not "from the future".
    recorder = _Recorder(sql, Limits(root=root), watch)
    sim = Simulation(site, root, recorder, start=start, seed=seed, interval=interval)
    recorder.sim = sim
    sim.scenarios = scenarios

    def tick(ts: float) -> None:
        now = datetime.fromtimestamp(ts, UTC)
        if recorder.status_changed:
            recorder.flush()  # the tick reads the stored status history
        recorder.watch.note(recorder.batch)
        watch.load_statuses(engine, now)
        watch.tick(now)
        sim.at(ts + OFFLINE_TICK.total_seconds(), tick)

    # Each opened alert is logged as a warning live; for weeks of the past that is noise.
    quiet = logging.getLogger("core.rules.instant")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        sim.start()
        sim.at(start.timestamp() + OFFLINE_TICK.total_seconds(), tick)
        hours = max(1, math.ceil((end - start) / timedelta(hours=1)))
        for hour in range(1, hours + 1):
            # Up to just before `end`: the live data (or an earlier run) starts there.
            sim.advance_to(min(start + timedelta(hours=hour), end).timestamp() - 1e-3)
            progress("simulate", hour, hours)
        recorder.flush()
    finally:
        quiet.setLevel(level)
        instant.close()
    return sim.messages, recorder.readings, recorder.events


# --- alerts and the people who handle them


@dataclass
class _Staff:
    """Who handles a resident's alerts (tier 1 caregiver), and who handles the rest."""

    caregiver_of: dict[int, User]
    operator: User | None

    def for_alert(self, alert: Alert, device_residents: dict[str, int | None]) -> User | None:
        resident = alert.resident_id
        if resident is None and alert.device_id:
            resident = device_residents.get(alert.device_id)
        if resident is not None and resident in self.caregiver_of:
            return self.caregiver_of[resident]
        return self.operator


def _staff(session: Session, site_id: str) -> _Staff:
    caregivers: dict[int, User] = {}
    for assignment, user in session.execute(
        select(CaregiverAssignment, User)
        .join(User, User.id == CaregiverAssignment.user_id)
        .join(Resident, Resident.id == CaregiverAssignment.resident_id)
        .where(Resident.site_id == site_id, User.active.is_(True))
        .order_by(CaregiverAssignment.tier, CaregiverAssignment.id)
    ):
        caregivers.setdefault(assignment.resident_id, user)
    operator = session.scalar(
        select(User)
        .where(User.active.is_(True), User.role.in_([Role.OPERATOR, Role.ADMIN]))
        .order_by(User.role.desc(), User.id)
    )
    return _Staff(caregivers, operator)


_NOTES = {
    "fall_detected": "Found on the floor by the bed; helped up, no injury. Nurse informed.",
    "button_pressed": "Pressed by mistake while reaching for the light. False alarm.",
    RuleKind.THRESHOLD.value: "Checked vitals by hand; back to normal after a rest.",
    RuleKind.INACTIVITY.value: "Was asleep in the armchair; woke and is fine.",
    RuleKind.NIGHT_EXIT.value: "Found in the corridor looking for the bathroom; walked back.",
    RuleKind.DEVICE_OFFLINE.value: "Sensor unplugged during cleaning; plugged back in.",
    RuleKind.BATTERY_LOW.value: "Battery replaced.",
}
_FALSE_ALARM_NOTES = {
    "button_pressed": "False alarm: pressed by mistake while reaching for the light.",
    RuleKind.THRESHOLD.value: "False alarm: wristband loose during exercise, readings jumped.",
    RuleKind.DEVICE_OFFLINE.value: "False alarm: Wi-Fi glitch, the sensor came back by itself.",
}


def _is_false_alarm(alert: Alert, rng: random.Random) -> bool:
    event_type = (alert.details or {}).get("event_type")
    if event_type == "button_pressed":
        return True
    kind = RuleKind(alert.kind).value
    return kind in _FALSE_ALARM_NOTES and rng.random() < 0.35


def _handling(alert: Alert, seed: int) -> tuple[timedelta | None, timedelta, str, bool]:
    """(time to acknowledge or None, time from then to resolve, note, false alarm) for an alert."""
    rng = random.Random(f"{seed}:{alert.dedupe_key}:{alert.opened_at.isoformat()}")  # noqa: S311
    kind = RuleKind(alert.kind).value
    event_type = (alert.details or {}).get("event_type")
    if _is_false_alarm(alert, rng):
        note = _FALSE_ALARM_NOTES.get(event_type or kind) or "False alarm."
        return None, timedelta(minutes=rng.uniform(1, 6)), note, True
    note = _NOTES.get(event_type or kind, "Checked; all well.")
    severity = Severity(alert.severity)
    if severity is Severity.CRITICAL:
        return (
            timedelta(minutes=rng.uniform(0.5, 6)),
            timedelta(minutes=rng.uniform(5, 30)),
            note,
            False,
        )
    if severity is Severity.WARNING:
        return (
            timedelta(minutes=rng.uniform(2, 35)),
            timedelta(minutes=rng.uniform(10, 90)),
            note,
            False,
        )
    return None, timedelta(hours=rng.uniform(1, 8)), note, False


def _replayed_firings(
    session: Session, site: SiteSpec, start: datetime, end: datetime
) -> list[_Firing]:
    """What the windowed rules judged from stored data would have raised over the period."""
    rules = session.scalars(
        select(AlertRule)
        .where(AlertRule.enabled.is_(True), AlertRule.kind.in_(REPLAYED_KINDS))
        .order_by(AlertRule.id)
    ).all()
    devices = {d.id: d for d in site.devices}
    residents = {r.id: r for r in site.residents}
    days = min(MAX_DAYS, max(1, math.ceil((end - start) / timedelta(days=1))))
    firings: list[_Firing] = []
    for rule in rules:
        if rule.site_id is not None and rule.site_id != site.id:
            continue
        draft = RuleDraft.of(session, rule)
        try:
            result = backtest(session, draft, end, days=days)
        except RuleParamsError as error:
            log.warning("rule %s skipped in the history: %s", rule.id, error)
            continue
        for firing in result.firings:
            at = ensure_utc(firing.at)
            if not start <= at < end:
                continue
            device = devices.get(firing.device_id or "")
            if firing.subject_type == "resident":
                rid = int(firing.subject_id)
                if rid not in residents:
                    continue
                subject = Subject("resident", str(rid), site.id, rid, firing.device_id)
            else:
                if device is None:
                    continue
                subject = Subject("device", device.id, site.id, device.resident_id, device.id)
            details = {"device_id": firing.device_id, "episode_start": at.isoformat()}
            firings.append(_Firing(at, rule, subject, firing.label, details))
    return firings


def _handle_alerts(
    session: Session,
    site: SiteSpec,
    start: datetime,
    end: datetime,
    firings: list[_Firing],
    seed: int,
    result: HistoryResult,
    progress: Progress,
) -> None:
    """Raise the windowed findings and have staff acknowledge and resolve alerts, in time order."""
    staff = _staff(session, site.id)
    device_residents = {d.id: d.resident_id for d in site.devices}
    order = itertools.count()
    queue: list[tuple[datetime, int, str, Any]] = []
    for firing in firings:
        heapq.heappush(
            queue, (firing.at, next(order), "clear" if firing.clear else "raise", firing)
        )
    # Instant alerts were opened during the simulation: people handle them too.
    for alert in session.scalars(
        select(Alert)
        .where(
            Alert.site_id == site.id,
            Alert.kind == RuleKind.EVENT,
            Alert.status == AlertStatus.OPEN,
            Alert.opened_at >= start,
            Alert.opened_at < end,
        )
        .order_by(Alert.opened_at)
    ):
        result.alerts_opened += 1
        heapq.heappush(queue, (ensure_utc(alert.opened_at), next(order), "handle", alert.id))
    descriptions: dict[int, str] = {}
    total = len(queue)
    done = 0
    while queue:
        at, _, action, payload = heapq.heappop(queue)
        done += 1
        if done % 50 == 0:
            progress("alerts", min(done, total), total)
        if action == "raise":
            firing: _Firing = payload
            rule = firing.rule
            if rule.id not in descriptions:
                descriptions[rule.id] = describe_rule(rule, "en")
            raised = lifecycle.raise_alert(
                session,
                kind=RuleKind(rule.kind),
                severity=Severity(rule.severity),
                subject=firing.subject,
                title=f"{rule.name}: {firing.label}"[:300],
                details={**firing.details, "rule": descriptions[rule.id]},
                rule=rule,
                at=at,
            )
            if raised.created:
                result.alerts_opened += 1
                heapq.heappush(queue, (at, next(order), "handle", raised.alert.id))
                total += 1
            else:
                result.repeats += 1
        elif action == "clear":
            firing = payload
            key = lifecycle.dedupe_key(firing.rule.id, RuleKind(firing.rule.kind), firing.subject)
            alert = lifecycle.find_unresolved(session, key)
            if alert is not None:
                lifecycle.resolve(session, alert.id, None, "The condition cleared.", at=at)
                result.resolved += 1
        elif action == "handle":
            alert = lifecycle.get_alert(session, payload)
            person = staff.for_alert(alert, device_residents)
            if person is None or alert.status is AlertStatus.RESOLVED:
                continue
            ack_after, resolve_after, note, false_alarm = _handling(alert, seed)
            ack_at = at + ack_after if ack_after is not None else None
            resolve_at = (ack_at or at) + resolve_after
            if end - at < LEAVE_OPEN:
                continue  # recent: still on someone's list
            if ack_at is not None:
                heapq.heappush(queue, (ack_at, next(order), "ack", (alert.id, person)))
                total += 1
            heapq.heappush(
                queue, (resolve_at, next(order), "resolve", (alert.id, person, note, false_alarm))
            )
            total += 1
        elif action == "ack":
            alert_id, person = payload
            alert = lifecycle.get_alert(session, alert_id)
            if alert.status is AlertStatus.OPEN:
                lifecycle.acknowledge(session, alert_id, person, at=at)
                result.acknowledged += 1
        elif action == "resolve":
            alert_id, person, note, false_alarm = payload
            alert = lifecycle.get_alert(session, alert_id)
            if alert.status is not AlertStatus.RESOLVED and at < end:
                lifecycle.resolve(session, alert_id, person, note, at=at)
                result.resolved += 1
                result.false_alarms += int(false_alarm)
    session.flush()
    progress("alerts", total, total)


# --- rollups and reports


def _rollups(engine: Engine, start: datetime, end: datetime, progress: Progress) -> int:
    """Hourly and daily rollups of the period: one statement per period, not the backfill's
    6-hour chunks, since each scans the readings (SQLite has no index on ts alone)."""
    sessions = make_session_factory(engine)
    rows = 0
    periods = (RollupPeriod.HOUR, RollupPeriod.DAY)
    for index, period in enumerate(periods, start=1):
        windows = backfill_windows(start, end, period)
        with session_scope(sessions) as session:
            rows += rollup_window(session, Window(period, windows[0].start, windows[-1].end))
        progress("rollups", index, len(periods))
    return rows


def report_days(start: datetime, end: datetime, timezone: str) -> list[date]:
    """The resident's local days that lie wholly inside [start, end)."""
    zone = ZoneInfo(timezone)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    days = []
    while day <= last:
        first, stop = day_span(day, timezone).utc
        if first >= start and stop <= end:
            days.append(day)
        day += timedelta(days=1)
    return days


def _reports(
    engine: Engine, site_id: str, start: datetime, end: datetime, progress: Progress
) -> int:
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        residents = session.scalars(
            select(Resident)
            .where(Resident.site_id == site_id, Resident.active.is_(True))
            .order_by(Resident.id)
        ).all()
        todo = [
            (r.id, day)
            for r in residents
            for day in report_days(start, end, resident_timezone(session, r))
        ]
    made = 0
    for index, (resident_id, day) in enumerate(todo, start=1):
        with session_scope(sessions) as session:
            if get_report(session, resident_id, day) is None:
                make_report(session, resident_id, day)
                made += 1
        progress("reports", index, len(todo))
    return made


def quality_windows(start: datetime, end: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """`count` one-hour windows spread evenly over [start, end), for data-quality runs."""
    hours = int((end - start) / timedelta(hours=1))
    if count <= 0 or hours <= 0:
        return []
    count = min(count, hours)
    step = hours / count
    picks = sorted({int(step * n + step / 2) for n in range(count)})
    return [(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in picks]


# --- the whole run


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


def _registered(session: Session, site_id: str) -> dict[str, datetime]:
    return {
        device_id: ensure_utc(created)
        for device_id, created in session.execute(
            select(Device.id, Device.created_at).where(Device.site_id == site_id)
        )
    }


def _offline_rules(session: Session) -> list[tuple[AlertRule, DeviceOfflineParams]]:
    rules = []
    for rule in session.scalars(
        select(AlertRule)
        .where(AlertRule.enabled.is_(True), AlertRule.kind == RuleKind.DEVICE_OFFLINE)
        .order_by(AlertRule.id)
    ):
        try:
            params = parse_params(RuleKind.DEVICE_OFFLINE, rule.params or {})
        except RuleParamsError as error:
            log.warning("rule %s skipped in the history: %s", rule.id, error)
            continue
        assert isinstance(params, DeviceOfflineParams)
        session.expunge(rule)
        rules.append((rule, params))
    return rules


def seed_history(
    engine: Engine,
    *,
    site_id: str,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    interval: float = DEFAULT_INTERVAL,
    root: str = "care",
    default_timezone: str = "UTC",
    now: datetime | None = None,
    progress: Progress | None = None,
) -> HistoryResult:
    """Generate `days` of history for a site (idempotent; see the module doc)."""
    if not 1 <= days <= MAX_DAYS:
        raise SimulatorError("bad_days", f"--days must be between 1 and {MAX_DAYS}.", value=days)
    report = progress or _no_progress
    now = ensure_utc(now or utcnow())
    sessions = make_session_factory(engine)
    timings: dict[str, float] = {}
    with session_scope(sessions) as session:
        site = load_site(session, site_id)
        planned = plan_range(session, site, days, now)
        covered = covered_range(session, site_id)
    if planned is None:
        assert covered is not None
        start, end, done = covered
        result = HistoryResult(site_id, start, end, skipped=True)
        if not done:  # an earlier run stopped after its alerts: finish its rollups and reports
            _finish(engine, site_id, start, end, result, report, timings)
            with session_scope(sessions) as session:
                _record_range(session, site_id, start, end, done=True, seed=seed)
        return result
    start, end = planned
    # Extending backwards, the record covers the earlier range too once this part is done.
    covered_end = covered[1] if covered is not None else end
    result = HistoryResult(site_id, start, end)
    with session_scope(sessions) as session:
        _backdate_registry(session, site_id, start)
    with session_scope(sessions) as session:
        site = load_site(session, site_id)
        registered = _registered(session, site_id)
        offline_rules = _offline_rules(session)
    scenarios = plan_scenarios(site, start, end, seed)
    result.scenarios = [s.spec.text for s in scenarios]
    watch = _OfflineWatch(offline_rules, site, registered)
    began = clock.perf_counter()
    result.messages, result.readings, result.events = _simulate(
        engine,
        site,
        start,
        end,
        seed=seed,
        interval=interval,
        scenarios=scenarios,
        watch=watch,
        root=root,
        default_timezone=default_timezone,
        progress=report,
    )
    timings["simulate"] = clock.perf_counter() - began
    began = clock.perf_counter()
    with session_scope(sessions) as session:
        firings = _replayed_firings(session, site, start, end) + watch.firings
        # Device-offline rules were read in another session: use this one's rows.
        rules = {f.rule.id: session.get(AlertRule, f.rule.id) for f in firings}
        for firing in firings:
            firing.rule = rules[firing.rule.id] or firing.rule
        _handle_alerts(session, site, start, end, firings, seed, result, report)
        _record_range(session, site_id, start, covered_end, done=False, seed=seed)
    timings["alerts"] = clock.perf_counter() - began
    _finish(engine, site_id, start, end, result, report, timings)
    with session_scope(sessions) as session:
        _record_range(session, site_id, start, covered_end, done=True, seed=seed)
    return result


def _finish(
    engine: Engine,
    site_id: str,
    start: datetime,
    end: datetime,
    result: HistoryResult,
    report: Progress,
    timings: dict[str, float],
) -> None:
    began = clock.perf_counter()
    result.rollup_rows = _rollups(engine, start, end, report)
    timings["rollups"] = clock.perf_counter() - began
    began = clock.perf_counter()
    result.reports = _reports(engine, site_id, start, end, report)
    timings["reports"] = clock.perf_counter() - began
    result.seconds = timings
