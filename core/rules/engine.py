"""The windowed rule engine: one tick evaluates every enabled windowed rule and applies findings.

A tick loads the rules, the registry and only the data each rule needs for its window, in a few
bulk queries (never one per device), runs the pure evaluators of core.rules.evaluate, then opens,
repeats or auto-resolves alerts through core.alerts.lifecycle in the caller's transaction.

Idempotent: an alarm opens an alert when none is open for the rule and subject; an open alert
counts a repeat only when a new episode began (the condition cleared and came back), so running
the same tick twice changes nothing. Momentary kinds (night exit, data quality) also skip episodes
that any earlier alert, even a resolved one, was about. On PostgreSQL, ticks take a transaction
advisory lock, so two ticks at once run one after the other; lifecycle's unique index and
savepoint remain the last line against a duplicate alert.

Rules read a metric from any registered, non-quarantined device of their scope that sends it,
whatever its type (ingest accepts every catalogue metric from every device); devices_reporting
finds them without scanning every device's readings. A resident an inactivity rule watches who
has no motion data at all gets one info setup notice (rule-less, one per resident) instead of an
inactivity alert; it resolves itself once motion data arrives.

Event rules are not evaluated here: ingest runs them on arrival (core.rules.events).

Silences (core.silences) hold alarms: a finding about a silenced resident, site or device at the
tick (or, for momentary kinds, at its episode) opens or repeats nothing; clearing findings still
resolve alerts open from before the silence. Inactivity counts quiet time from a silence's end,
so a resident back from hospital is not "inactive" for the days they were away.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import rollups
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.contract.catalogue import DEVICE_METRICS
from core.i18n import translate
from core.rules import evaluate as ev
from core.rules.describe import describe_rule
from core.rules.params import (
    DataQualityParams,
    RuleParamsError,
    parse_params,
)
from core.rules.scope import covers
from core.silences import load_holds
from core.timeutil import ensure_utc
from models import (
    Alert,
    AlertRule,
    AlertStatus,
    Device,
    Event,
    JobWatermark,
    QualityRun,
    Reading,
    Resident,
    ResidentRoutine,
    Rollup,
    RollupPeriod,
    RuleKind,
    RuleOverride,
    ScopeType,
    Severity,
    Site,
    in_service,
)

log = logging.getLogger(__name__)

WINDOWED_KINDS = frozenset(k for k in RuleKind if k is not RuleKind.EVENT)
MOMENTARY_KINDS = frozenset({RuleKind.NIGHT_EXIT, RuleKind.DATA_QUALITY})
# pg_advisory_xact_lock key of the engine ("IoTCare rules" in spirit; any constant will do).
LOCK_KEY = 0x10CA_4E01
# Samples before the duration, so the last cleared value (the episode's start) is in view.
THRESHOLD_MARGIN = timedelta(minutes=10)
# The current active hours began at most a day ago: older motion cannot change the outcome.
MOTION_LOOKBACK = timedelta(hours=24)
BATTERY_LOOKBACK = timedelta(hours=24)
# Momentary kinds look back to the previous tick (job_watermarks), at least this far (late
# data, re-runs) and at most this far (after a long stop, stale news is not worth a page).
MOMENTARY_MIN_LOOKBACK = timedelta(minutes=15)
MOMENTARY_MAX_CATCHUP = timedelta(hours=24)
QUALITY_LOOKBACK = timedelta(hours=24)
# Door readings before the window, to see the closed state an opening follows.
DOOR_PRIOR = timedelta(minutes=30)
# Ids per IN (...) list: well under SQLite's variable limit, and plans stay index lookups.
CHUNK = 900

# A new resident without motion data gets a setup notice only after this long: at a demo's start
# or a resident's admission the sensor's first reading is usually a minute away.
SETUP_GRACE = timedelta(minutes=30)
# Readings later than this after their hour may be missing from the hour's rollup for a while.
ROLLUP_LAG = timedelta(hours=2)

# Device types that are doors: judged by night-exit rules even before their first message.
DOORS = frozenset(t.value for t, metrics in DEVICE_METRICS.items() if "door_open" in metrics)
# Metric -> the device types the catalogue says report it. Rules read a metric from any device
# that sends it (ingest accepts every catalogue metric from every device): these types are only
# where it is looked for first, without asking the database whether the device sends it.
_TYPES_REPORTING: dict[str, frozenset[str]] = {
    metric: frozenset(t.value for t, metrics in DEVICE_METRICS.items() if metric in metrics)
    for metric in {m for metrics in DEVICE_METRICS.values() for m in metrics}
}


def rolled_up(
    session: Session,
    metric: str,
    device_ids: Iterable[str],
    since: datetime | None = None,
    before: datetime | None = None,
) -> set[str]:
    """The devices with an hourly rollup of `metric` (with a bucket in [since, before))."""
    ro = Rollup.__table__.c
    found: set[str] = set()
    for chunk in _chunks(device_ids):
        query = select(ro.device_id).where(
            ro.device_id.in_(chunk), ro.metric == metric, ro.period == RollupPeriod.HOUR.value
        )
        if since is not None:
            query = query.where(ro.bucket >= since)
        if before is not None:
            query = query.where(ro.bucket < before)
        found |= set(session.scalars(query.distinct()))
    return found


def devices_reporting(
    session: Session,
    metric: str,
    devices: Mapping[str, str | None],
    start: datetime,
    end: datetime,
) -> set[str]:
    """Of these devices (id -> type), those that may have readings of `metric` in (start, end].

    A superset, found cheaply: devices of a type the catalogue says reports the metric are taken
    as they are; any other device only when an hourly rollup of the metric, or a raw reading
    since the rollups' watermark, shows it sends the metric. So rules read a metric from any
    device that sends it (ingest accepts any catalogue metric from any device) without scanning
    a wearable's day of readings every minute to find no motion in it.
    """
    expected = _TYPES_REPORTING.get(metric, frozenset())
    found = {i for i, kind in devices.items() if kind in expected}
    others = set(devices) - found
    if not others:
        return found
    found |= rolled_up(session, metric, others, start - timedelta(hours=1))
    mark = rollups.get_watermark(session, RollupPeriod.HOUR)
    tail = max(start, mark - ROLLUP_LAG) if mark is not None else start
    r = Reading.__table__.c
    d = Device.__table__.c
    sends = (
        select(r.device_id)
        .where(r.device_id == d.id, r.metric == metric, r.ts > tail, r.ts <= end)
        .exists()
    )
    for chunk in _chunks(others - found):
        found |= set(session.scalars(select(d.id).where(d.id.in_(chunk), sends)))
    return found


@dataclass
class EngineResult:
    """What one tick did: rules evaluated, findings per state, alerts opened/repeated/resolved."""

    now: datetime
    rules: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    opened: list[uuid.UUID] = field(default_factory=list)
    repeated: list[uuid.UUID] = field(default_factory=list)
    resolved: list[uuid.UUID] = field(default_factory=list)
    # Alarms not raised because a silence covers their subject (core.silences).
    held: int = 0
    # Rules (or per-resident overrides, as "rule:resident") skipped for invalid parameters.
    invalid: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Device:
    id: str
    site_id: str
    resident_id: int | None
    type: str | None
    status: str
    last_seen: datetime | None
    battery: int | None
    created_at: datetime | None
    status_since: datetime | None = None  # when the status began (device offline: held how long)


@dataclass(frozen=True, slots=True)
class _Resident:
    id: int
    site_id: str
    name: str
    timezone: str
    active_start: time
    active_end: time
    created_at: datetime | None = None


@dataclass
class _Registry:
    sites: dict[str, str]  # id -> timezone
    residents: dict[int, _Resident]  # active residents only
    devices: list[_Device]  # quarantined devices are left out: they never raise alerts
    by_id: dict[str, _Device] = field(default_factory=dict)
    # Rules are scoped by site, resident or type: look candidates up instead of scanning all.
    by_site: dict[str, list[_Device]] = field(default_factory=dict)
    by_resident: dict[int, list[_Device]] = field(default_factory=dict)
    by_type: dict[str | None, list[_Device]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in self.devices:
            self.by_id[d.id] = d
            self.by_site.setdefault(d.site_id, []).append(d)
            if d.resident_id is not None:
                self.by_resident.setdefault(d.resident_id, []).append(d)
            self.by_type.setdefault(d.type, []).append(d)

    def candidates(self, rule: AlertRule) -> list[_Device]:
        """The devices a rule may cover (a superset, to be checked with `covers`)."""
        scope = ScopeType(rule.scope_type or ScopeType.SITE)
        if scope is ScopeType.RESIDENT:
            return self.by_resident.get(rule.resident_id, []) if rule.resident_id else []
        if rule.site_id is not None:
            return self.by_site.get(rule.site_id, [])
        if scope is ScopeType.DEVICE_TYPE:
            return self.by_type.get(rule.device_type, [])
        return self.devices


@dataclass
class _Rule:
    rule: AlertRule
    kind: RuleKind
    # The kind's parameter model (core.rules.params); Any, as each kind has its own.
    params: Any
    overrides: dict[int, Any] = field(default_factory=dict)

    def params_for(self, resident_id: int | None) -> Any:
        """The resident's override when there is one, else the rule's own parameters."""
        if resident_id is None:
            return self.params
        return self.overrides.get(resident_id, self.params)


@dataclass(frozen=True, slots=True)
class _Outcome:
    rule: _Rule
    finding: ev.Finding
    # ("resident", id), ("device", id) or ("suite", name): the full Subject is built only
    # for the few findings that open, repeat or resolve an alert.
    key: tuple[str, Any]


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    items = sorted(set(values))
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class _Tick:
    """One evaluation: shared registry and data, outcomes per rule."""

    def __init__(self, session: Session, now: datetime, result: EngineResult) -> None:
        self.session = session
        self.now = now
        self.result = result
        self.registry = self._load_registry()
        self.holds = load_holds(session, now - max(MOTION_LOOKBACK, MOMENTARY_MAX_CATCHUP), now)
        # Inactivity: residents needing a setup notice (-> a motion sensor id, if any), and
        # residents judged on their motion data.
        self.setup: dict[int, str | None] = {}
        self.judged: set[int] = set()

    # --- loading

    def _load_registry(self) -> _Registry:
        s = self.session
        sites = dict(s.execute(select(Site.id, Site.timezone)).tuples().all())
        residents: dict[int, _Resident] = {}
        for rid, site_id, name, tz, start, end, created in s.execute(
            select(
                Resident.id,
                Resident.site_id,
                Resident.name,
                Resident.timezone,
                Resident.active_start,
                Resident.active_end,
                Resident.created_at,
            ).where(Resident.active.is_(True))
        ).tuples():
            residents[rid] = _Resident(
                rid, site_id, name, tz or sites.get(site_id, "UTC"), start, end, created
            )
        devices = [
            _Device(*row)
            for row in s.execute(
                select(
                    Device.id,
                    Device.site_id,
                    Device.resident_id,
                    Device.type,
                    Device.status,
                    Device.last_seen,
                    Device.battery,
                    Device.created_at,
                    Device.status_since,
                ).where(Device.quarantined.is_(False), in_service())
            ).tuples()
        ]
        return _Registry(sites, residents, devices)

    def in_scope(self, rule: _Rule) -> list[_Device]:
        """Devices the rule covers, of any type; their residents must be active."""
        found = []
        for d in self.registry.candidates(rule.rule):
            if d.resident_id is not None and d.resident_id not in self.registry.residents:
                continue  # a resident who left: their devices are not watched over
            if covers(rule.rule, site_id=d.site_id, resident_id=d.resident_id, device_type=d.type):
                found.append(d)
        return found

    def reporting(self, metric: str, devices: Iterable[_Device], start: datetime) -> set[str]:
        """Ids of the devices that may have readings of `metric` in (start, now] (a superset)."""
        return devices_reporting(
            self.session, metric, {d.id: d.type for d in devices}, start, self.now
        )

    def ever_reported(self, metric: str, device_ids: Iterable[str]) -> set[str]:
        """The devices with an hourly rollup of `metric`, ever (rollups outlive raw readings)."""
        return rolled_up(self.session, metric, device_ids)

    def samples(
        self,
        metric: str,
        device_ids: Iterable[str],
        start: datetime,
    ) -> dict[str, list[ev.Sample]]:
        """Readings of one metric per device in (start, now], oldest first."""
        r = Reading.__table__.c
        out: dict[str, list[ev.Sample]] = defaultdict(list)
        for chunk in _chunks(device_ids):
            query = select(r.device_id, r.ts, r.value).where(
                r.device_id.in_(chunk), r.metric == metric, r.ts > start, r.ts <= self.now
            )
            for device_id, ts, value in self.session.execute(query.order_by(r.device_id, r.ts)):
                out[device_id].append((ts, value))
        return out

    def latest(
        self,
        metric: str,
        device_ids: Iterable[str],
        start: datetime,
        *,
        want: tuple[str, ...] = ("ts", "value"),
        positive: bool = False,
        oldest: bool = False,
    ) -> dict[str, tuple[Any, ...]]:
        """Per device, its latest (or oldest) reading of `metric` in (start, now]: the `want`ed
        columns.

        Correlated LIMIT 1 subqueries walk the primary key (device_id, ts) backwards and stop at
        the first match, instead of reading the whole window: a few index probes per device.
        """
        r = Reading.__table__.c
        d = Device.__table__.c

        def newest(column: Any) -> Any:
            inner = select(column).where(
                r.device_id == d.id, r.metric == metric, r.ts > start, r.ts <= self.now
            )
            if positive:
                inner = inner.where(r.value > 0.5)
            # The scalar subquery keeps the column's type, so ts comes back as aware UTC.
            order = r.ts.asc() if oldest else r.ts.desc()
            return inner.order_by(order).limit(1).scalar_subquery()

        columns = [newest(r.ts if name == "ts" else r.value) for name in want]
        out: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(device_ids):
            for device_id, *found in self.session.execute(
                select(d.id, *columns).where(d.id.in_(chunk))
            ):
                if found[0] is not None:
                    out[device_id] = tuple(found)
        return out

    def event_times(
        self, event_type: str, device_ids: Iterable[str], start: datetime
    ) -> dict[str, list[datetime]]:
        """Times of events of one type per device in [start, now], oldest first."""
        e = Event.__table__.c
        out: dict[str, list[datetime]] = defaultdict(list)
        for chunk in _chunks(device_ids):
            for device_id, ts in self.session.execute(
                select(e.device_id, e.ts)
                .where(
                    e.device_id.in_(chunk), e.type == event_type, e.ts >= start, e.ts <= self.now
                )
                .order_by(e.ts)
            ):
                out[device_id].append(ts)
        return out

    def held(self, outcome: _Outcome) -> bool:
        """Whether a silence covers the finding's subject now (momentary kinds: or at its
        episode, so a door opened while the resident was away is not news after they return)."""
        if not self.holds:
            return False
        kind, ident = outcome.key
        finding = outcome.finding
        if kind == "resident":
            resident = self.registry.residents.get(ident)
            site_id, resident_id = (resident.site_id if resident else None), ident
        elif kind == "device":
            device = self.registry.by_id.get(ident)
            site_id = device.site_id if device else None
            resident_id = device.resident_id if device else None
        else:
            return False  # data quality suites belong to no site, resident or device
        times = [self.now]
        if outcome.rule.kind in MOMENTARY_KINDS and finding.since is not None:
            times.append(finding.since)
        return any(
            self.holds.held(
                at, site_id=site_id, resident_id=resident_id, device_id=finding.device_id
            )
            for at in times
        )

    # --- subjects

    def resident_subject(self, resident_id: int, device_id: str | None) -> tuple[Subject, str]:
        resident = self.registry.residents[resident_id]
        subject = Subject("resident", str(resident_id), resident.site_id, resident_id, device_id)
        return subject, resident.name

    def device_subject(self, device_id: str) -> tuple[Subject, str]:
        device = self.registry.by_id[device_id]
        return Subject(
            "device", device_id, device.site_id, device.resident_id, device_id
        ), device_id

    def subject_of(self, key: tuple[str, Any], finding: ev.Finding) -> tuple[Subject, str]:
        """The alert subject and a label for the title (resident's name, device id, suite)."""
        kind, ident = key
        if kind == "resident":
            return self.resident_subject(ident, finding.device_id)
        if kind == "device":
            return self.device_subject(ident)
        return Subject("suite", str(ident)), str(ident)

    @staticmethod
    def outcomes(rule: _Rule, findings: Iterable[ev.Finding]) -> list[_Outcome]:
        # Findings are keyed by the (type, id) tuples this engine handed the evaluators.
        return [_Outcome(rule, f, f.key) for f in findings]  # type: ignore[arg-type]

    @staticmethod
    def subject_key(device: _Device) -> tuple[str, Any]:
        """Resident-level rules are about the resident of the device, else about the device."""
        if device.resident_id is not None:
            return ("resident", device.resident_id)
        return ("device", device.id)

    # --- kinds

    def threshold(self, rules: Sequence[_Rule]) -> list[_Outcome]:
        starts: dict[str, datetime] = {}
        devices: dict[int, list[_Device]] = {}
        for rule in rules:
            metric = rule.params.metric
            devices[rule.rule.id] = self.in_scope(rule)
            longest = max(
                [rule.params.for_minutes] + [p.for_minutes for p in rule.overrides.values()]
            )
            start = self.now - timedelta(minutes=longest) - THRESHOLD_MARGIN
            starts[metric] = min(starts.get(metric, start), start)
        data: dict[str, dict[str, list[ev.Sample]]] = {}
        for metric, start in starts.items():
            on_metric = [r for r in rules if r.params.metric == metric]
            scoped = {d.id: d for rule in on_metric for d in devices[rule.rule.id]}
            ids = self.reporting(metric, scoped.values(), start)
            # Most devices read normal values: their latest sample is enough to say CLEAR
            # under every rule. Only the others need the whole window, for the duration.
            latest = self.latest(metric, ids, start)
            unsettled = {
                d.id
                for rule in on_metric
                for d in devices[rule.rule.id]
                if d.id in latest
                and not ev.threshold_cleared(
                    rule.params_for(d.resident_id),
                    latest[d.id][1],
                )
            }
            data[metric] = self.samples(metric, unsettled, start)
            for device_id, (ts, value) in latest.items():
                if device_id not in unsettled:
                    data[metric][device_id] = [(ts, value)]
        found: list[_Outcome] = []
        for rule in rules:
            metric = rule.params.metric
            groups: dict[Any, dict[Hashable, list[ev.Series]]] = defaultdict(
                lambda: defaultdict(list)
            )
            for d in devices[rule.rule.id]:
                samples = data[metric].get(d.id)
                if samples:
                    params = rule.params_for(d.resident_id)
                    groups[params][self.subject_key(d)].append(ev.Series(d.id, samples))
            for params, subjects in groups.items():
                found += self.outcomes(rule, ev.evaluate_threshold(subjects, params, self.now))
        return found

    def inactivity(self, rules: Sequence[_Rule]) -> list[_Outcome]:
        start = self.now - MOTION_LOOKBACK
        scoped: dict[str, _Device] = {}
        covered: set[int] = set()  # residents some inactivity rule watches over
        per_rule: dict[int, list[_Device]] = {}
        for rule in rules:
            per_rule[rule.rule.id] = [d for d in self.in_scope(rule) if d.resident_id]
            scoped |= {d.id: d for d in per_rule[rule.rule.id]}
            covered |= {d.resident_id for d in per_rule[rule.rule.id] if d.resident_id}
            covered |= self.deviceless_residents(rule)
        ids = self.reporting("motion", scoped.values(), start)
        last_motion = {
            device_id: ts
            for device_id, (ts,) in self.latest(
                "motion", ids, start, want=("ts",), positive=True
            ).items()
        }
        # The first motion datum in view (a reading of any value): quiet time starts there.
        first_data = {
            device_id: ts
            for device_id, (ts,) in self.latest(
                "motion", ids, start, want=("ts",), oldest=True
            ).items()
        }
        for device_id, times in self.event_times("motion", scoped, start).items():
            last_motion[device_id] = max(times[-1], last_motion.get(device_id, times[-1]))
            first_data[device_id] = min(times[0], first_data.get(device_id, times[0]))
        # Sensors silent all day that reported motion before (a rollup of it) are still judged.
        silent = {i for i in scoped if i not in first_data}
        motion_devices = set(first_data) | self.ever_reported("motion", silent)
        routines: dict[int, dict[int, float]] = defaultdict(dict)
        if any(p.use_routine for rule in rules for p in (rule.params, *rule.overrides.values())):
            residents = {scoped[i].resident_id for i in motion_devices}
            for chunk in _chunks(residents):
                for rid, hour, gap in self.session.execute(
                    select(
                        ResidentRoutine.resident_id,
                        ResidentRoutine.hour,
                        ResidentRoutine.usual_gap_minutes,
                    ).where(ResidentRoutine.resident_id.in_(chunk))
                ):
                    routines[rid][hour] = gap
        found: list[_Outcome] = []
        judged: set[int] = set()
        for rule in rules:
            per_resident: dict[int, list[ev.MotionSource]] = defaultdict(list)
            for d in per_rule[rule.rule.id]:
                assert d.resident_id is not None
                if d.id in motion_devices:
                    per_resident[d.resident_id].append(ev.MotionSource(d.id, last_motion.get(d.id)))
            groups: dict[Any, dict[Hashable, ev.Activity]] = defaultdict(dict)
            for rid, motion in per_resident.items():
                resident = self.registry.residents[rid]
                starts = [first_data[s.device_id] for s in motion if s.device_id in first_data]
                data_since = min(starts) if len(starts) == len(motion) else None
                # Quiet time counts from a silence's end too (back from hospital).
                back = self.holds.ended_before(self.now, site_id=resident.site_id, resident_id=rid)
                if back is not None:
                    data_since = max(data_since or back, back)
                activity = ev.Activity(
                    resident.timezone,
                    resident.active_start,
                    resident.active_end,
                    motion,
                    routines.get(rid, {}),
                    data_since=data_since,
                )
                groups[rule.params_for(rid)][("resident", rid)] = activity
                judged.add(rid)
            for params, subjects in groups.items():
                found += self.outcomes(rule, ev.evaluate_inactivity(subjects, params, self.now))
        # Residents with no motion data at all get a setup notice instead (see _setup_notices),
        # once they have been registered for SETUP_GRACE: a sensor just installed is not news.
        self.setup = {
            rid: next(
                (d.id for d in self.registry.by_resident.get(rid, []) if d.type == "motion_sensor"),
                None,
            )
            for rid in covered - judged
            if (registered := self.registry.residents[rid].created_at) is None
            or self.now - registered >= SETUP_GRACE
        }
        self.judged = judged
        return found

    def deviceless_residents(self, rule: _Rule) -> set[int]:
        """Active residents the rule covers who have no device yet (a site or resident rule)."""
        if ScopeType(rule.rule.scope_type or ScopeType.SITE) is ScopeType.DEVICE_TYPE:
            return set()
        return {
            rid
            for rid, r in self.registry.residents.items()
            if rid not in self.registry.by_resident
            and covers(rule.rule, site_id=r.site_id, resident_id=rid, device_type=None)
        }

    def _device_states(
        self, devices: Iterable[_Device], battery: dict[str, float] | None = None
    ) -> Iterator[tuple[_Device, ev.DeviceState]]:
        for d in devices:
            yield (
                d,
                ev.DeviceState(
                    d.id,
                    status=str(d.status),
                    status_since=d.status_since,
                    last_seen=d.last_seen,
                    registered_at=d.created_at,
                    battery=d.battery,
                    battery_reading=(battery or {}).get(d.id),
                ),
            )

    def device_offline(self, rules: Sequence[_Rule]) -> list[_Outcome]:
        found: list[_Outcome] = []
        for rule in rules:
            groups: dict[Any, dict[Hashable, ev.DeviceState]] = defaultdict(dict)
            for d, state in self._device_states(self.in_scope(rule)):
                groups[rule.params_for(d.resident_id)][("device", d.id)] = state
            for params, subjects in groups.items():
                found += self.outcomes(rule, ev.evaluate_device_offline(subjects, params, self.now))
        return found

    def battery_low(self, rules: Sequence[_Rule]) -> list[_Outcome]:
        scoped = {rule.rule.id: self.in_scope(rule) for rule in rules}
        start = self.now - BATTERY_LOOKBACK
        devices = {d.id: d for found in scoped.values() for d in found}
        ids = self.reporting("battery_pct", devices.values(), start)
        readings = {
            device_id: value
            for device_id, (value,) in self.latest(
                "battery_pct", ids, start, want=("value",)
            ).items()
        }
        found: list[_Outcome] = []
        for rule in rules:
            groups: dict[Any, dict[Hashable, ev.DeviceState]] = defaultdict(dict)
            for d, state in self._device_states(scoped[rule.rule.id], readings):
                groups[rule.params_for(d.resident_id)][("device", d.id)] = state
            for params, subjects in groups.items():
                found += self.outcomes(rule, ev.evaluate_battery_low(subjects, params))
        return found

    def night_exit(self, rules: Sequence[_Rule], since: datetime) -> list[_Outcome]:
        scoped = {rule.rule.id: self.in_scope(rule) for rule in rules}
        devices = {d.id: d for found in scoped.values() for d in found}
        ids = self.reporting("door_open", devices.values(), since - DOOR_PRIOR)
        readings = self.samples("door_open", ids, since - DOOR_PRIOR)
        events = self.event_times("door_opened", devices, since)
        # Doors are the devices that report door_open, or door_opened events.
        doors = {
            rule_id: [d for d in found if d.id in readings or d.id in events or d.type in DOORS]
            for rule_id, found in scoped.items()
        }
        found: list[_Outcome] = []
        for rule in rules:
            watches: dict[Any, dict[Hashable, list[ev.DoorSource]]] = defaultdict(
                lambda: defaultdict(list)
            )
            zones: dict[Hashable, str] = {}
            hours: dict[Hashable, tuple[time, time] | None] = {}
            for d in doors[rule.rule.id]:
                key = self.subject_key(d)
                if d.resident_id is not None:
                    resident = self.registry.residents[d.resident_id]
                    zones[key] = resident.timezone
                    hours[key] = (resident.active_start, resident.active_end)
                else:
                    zones[key] = self.registry.sites.get(d.site_id, "UTC")
                    hours[key] = None
                source = ev.DoorSource(d.id, readings.get(d.id, ()), events.get(d.id, ()))
                watches[rule.params_for(d.resident_id)][key].append(source)
            for params, subjects in watches.items():
                watch = {
                    key: ev.DoorWatch(zones[key], sources, hours[key])
                    for key, sources in subjects.items()
                }
                found += self.outcomes(
                    rule,
                    ev.evaluate_night_exit(watch, params, self.now, since),
                )
        return found

    def data_quality(self, rules: Sequence[_Rule], since: datetime) -> list[_Outcome]:
        q = QualityRun.__table__.c
        runs = [
            ev.QualityOutcome(suite, finished, bool(success), failed or 0, evaluated or 0, run_id)
            for run_id, suite, finished, success, failed, evaluated in self.session.execute(
                select(q.id, q.suite, q.finished_at, q.success, q.failed, q.evaluated).where(
                    q.finished_at > self.now - QUALITY_LOOKBACK,
                    q.finished_at <= self.now,
                    q.success.is_not(None),
                )
            )
        ]
        found: list[_Outcome] = []
        for rule in rules:
            params = rule.params
            assert isinstance(params, DataQualityParams)
            for finding in ev.evaluate_data_quality(runs, params, self.now, since):
                found.append(_Outcome(rule, finding, ("suite", str(finding.key))))
        return found


# --- rules, watermarks, applying findings


def _load_rules(session: Session, kinds: frozenset[RuleKind], result: EngineResult) -> list[_Rule]:
    rules: list[_Rule] = []
    for rule in session.scalars(
        select(AlertRule)
        .where(AlertRule.enabled.is_(True), AlertRule.kind.in_([k.value for k in kinds]))
        .order_by(AlertRule.id)
    ):
        try:
            params = parse_params(rule.kind, rule.params)
        except RuleParamsError as error:
            # One broken rule must not stop the others; the operator sees it in the result.
            log.warning("rule %s (%s) skipped: %s", rule.id, rule.name, error)
            result.invalid[str(rule.id)] = error.errors
            continue
        rules.append(_Rule(rule, RuleKind(rule.kind), params))
    if not rules:
        return rules
    by_id = {r.rule.id: r for r in rules}
    for chunk in _chunks(by_id):
        for override in session.scalars(
            select(RuleOverride).where(RuleOverride.rule_id.in_(chunk))
        ):
            compiled = by_id[override.rule_id]
            merged = {**(compiled.rule.params or {}), **(override.params or {})}
            try:
                compiled.overrides[override.resident_id] = parse_params(compiled.kind, merged)
            except RuleParamsError as error:
                # The rule's own parameters still protect this resident.
                log.warning(
                    "override of rule %s for resident %s ignored: %s",
                    override.rule_id,
                    override.resident_id,
                    error,
                )
                result.invalid[f"{override.rule_id}:{override.resident_id}"] = error.errors
    return rules


def _watermark_job(kind: RuleKind) -> str:
    return f"rules.{kind.value}"


def _momentary_since(session: Session, kind: RuleKind, now: datetime) -> datetime:
    """Where a momentary kind looks back to: the previous tick, within [15 min, 24 h] of now."""
    mark = session.get(JobWatermark, _watermark_job(kind))
    floor = now - MOMENTARY_MAX_CATCHUP
    previous = mark.watermark if mark is not None else now - MOMENTARY_MIN_LOOKBACK
    return min(max(previous, floor), now - MOMENTARY_MIN_LOOKBACK)


def _advance_watermark(session: Session, kind: RuleKind, now: datetime) -> None:
    job = _watermark_job(kind)
    mark = session.get(JobWatermark, job)
    if mark is not None:
        mark.watermark = max(mark.watermark, now)
        return
    try:
        # Another tick (SQLite has no advisory lock) may insert the same row at once.
        with session.begin_nested():
            session.add(JobWatermark(job=job, watermark=now, details={}))
            session.flush()
    except IntegrityError:
        mark = session.get(JobWatermark, job)
        if mark is not None:
            mark.watermark = max(mark.watermark, now)


def _episode(details: dict[str, Any] | None) -> datetime | None:
    value = (details or {}).get("episode_start")
    if not value:
        return None
    try:
        return ensure_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _title(rule: AlertRule, label: str) -> str:
    return f"{rule.name}: {label}"[:300]


def _apply(session: Session, tick: _Tick, outcomes: Sequence[_Outcome]) -> None:
    """Open, repeat or resolve alerts for the findings, through the alert lifecycle."""
    result = tick.result
    now = tick.now
    rule_ids = sorted({o.rule.rule.id for o in outcomes})
    unresolved: dict[str, tuple[uuid.UUID, dict[str, Any], datetime]] = {}
    remembered: dict[str, datetime] = {}  # momentary kinds: latest episode any alert was about
    a = Alert.__table__.c
    for chunk in _chunks(rule_ids):
        for alert_id, key, details, last_seen in session.execute(
            select(a.id, a.dedupe_key, a.details, a.last_seen_at).where(
                a.rule_id.in_(chunk), a.status != AlertStatus.RESOLVED.value
            )
        ):
            unresolved[key] = (alert_id, details or {}, last_seen)
    momentary = sorted({o.rule.rule.id for o in outcomes if o.rule.kind in MOMENTARY_KINDS})
    if momentary:
        oldest = now - MOMENTARY_MAX_CATCHUP
        for key, details in session.execute(
            select(a.dedupe_key, a.details).where(
                a.rule_id.in_(momentary), a.last_seen_at >= oldest
            )
        ):
            episode = _episode(details)
            if episode is not None and (key not in remembered or episode > remembered[key]):
                remembered[key] = episode
    note = translate("rules.finding.resolved", "en")
    descriptions: dict[int, str] = {}
    for outcome in outcomes:
        rule, finding = outcome.rule, outcome.finding
        result.findings[finding.state.value] = result.findings.get(finding.state.value, 0) + 1
        if finding.state is ev.State.HOLD:
            continue
        if finding.state is ev.State.ALARM and tick.held(outcome):
            result.held += 1
            continue
        subject_type, subject_id = outcome.key
        key = lifecycle.dedupe_key(rule.rule.id, rule.kind, Subject(subject_type, str(subject_id)))
        open_alert = unresolved.get(key)
        if finding.state is ev.State.ALARM:
            if rule.kind in MOMENTARY_KINDS:
                seen = remembered.get(key)
                if seen is not None and finding.since is not None and finding.since <= seen:
                    continue  # this opening or failed run was alerted already
            elif open_alert is not None:
                if finding.since is None:
                    continue  # the same episode, seen again
                _, details, last_seen = open_alert
                if finding.since <= (_episode(details) or last_seen):
                    continue
            if rule.rule.id not in descriptions:
                descriptions[rule.rule.id] = describe_rule(rule.rule, "en")
            details = {
                **finding.details,
                "rule": descriptions[rule.rule.id],
                "device_id": finding.device_id,
            }
            if finding.since is not None:
                details["episode_start"] = finding.since.isoformat()
            subject, label = tick.subject_of(outcome.key, finding)
            raised = lifecycle.raise_alert(
                session,
                kind=rule.kind,
                severity=rule.rule.severity,
                subject=subject,
                title=_title(rule.rule, label),
                details=details,
                rule=rule.rule,
                at=now,
            )
            (result.opened if raised.created else result.repeated).append(raised.alert.id)
            unresolved[key] = (raised.alert.id, raised.alert.details, now)
            if finding.since is not None:
                remembered[key] = finding.since
        elif finding.state is ev.State.CLEAR and rule.rule.auto_resolve and open_alert is not None:
            alert = lifecycle.resolve(session, open_alert[0], None, note, at=now)
            result.resolved.append(alert.id)
            unresolved.pop(key, None)


def _setup_notices(session: Session, tick: _Tick) -> None:
    """A setup notice for each watched resident with no motion data yet; resolved once it comes.

    An inactivity alert would be wrong (nobody knows whether they moved): an info notice asks
    for the sensor instead. It is raised once per resident, never again after it was resolved
    by hand, and resolves itself when the first motion data is judged.
    """
    result, now = tick.result, tick.now
    kind = RuleKind.INACTIVITY
    keys = {
        rid: lifecycle.dedupe_key(None, kind, Subject("resident", str(rid)))
        for rid in (*tick.setup, *tick.judged)
    }
    a = Alert.__table__.c
    # Open notices (the partial unique index on unresolved dedupe keys answers this)...
    open_notices: dict[str, uuid.UUID] = {}
    for chunk in _chunks(keys[rid] for rid in tick.judged):
        for key, alert_id in session.execute(
            select(a.dedupe_key, a.id).where(
                a.dedupe_key.in_(chunk), a.status != AlertStatus.RESOLVED.value
            )
        ):
            open_notices[key] = alert_id
    # ...and, only for the few residents still without data, any notice ever posted.
    posted: set[str] = set()
    for chunk in _chunks(keys[rid] for rid in tick.setup):
        posted |= set(session.scalars(select(a.dedupe_key).where(a.dedupe_key.in_(chunk))))
    title = translate("rules.setup.inactivity_title", "en")
    for rid, device_id in sorted(tick.setup.items()):
        if keys[rid] in posted:
            continue  # posted already (open, or seen to by someone)
        site_id = tick.registry.residents[rid].site_id
        if tick.holds.held(now, site_id=site_id, resident_id=rid):
            continue  # away: the notice waits for their return
        subject, name = tick.resident_subject(rid, device_id)
        raised = lifecycle.raise_alert(
            session,
            kind=kind,
            severity=Severity.INFO,
            subject=subject,
            title=f"{title}: {name}"[:300],
            details={"setup": True, "reason": "no_motion_data", "device_id": device_id},
            at=now,
        )
        if raised.created:
            result.opened.append(raised.alert.id)
    note = translate("rules.finding.resolved", "en")
    for rid in sorted(tick.judged):
        alert_id = open_notices.get(keys[rid])
        if alert_id is not None:
            lifecycle.resolve(session, alert_id, None, note, at=now)
            result.resolved.append(alert_id)


def _serialize_ticks(session: Session) -> None:
    """Make ticks at once run one after the other, so the second sees the first's alerts."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif dialect == "sqlite":
        # A write as the transaction's first statement takes SQLite's write lock at once (the
        # busy timeout queues the other tick) instead of failing later on a stale snapshot.
        session.execute(
            text("UPDATE job_watermarks SET job = job WHERE job = :job"), {"job": "rules.lock"}
        )


def evaluate_rules(
    session: Session, now: datetime, *, kinds: Iterable[RuleKind | str] | None = None
) -> EngineResult:
    """One tick: evaluate the enabled windowed rules (all, or of `kinds`) and apply the findings.

    Works in the caller's transaction (commit afterwards to publish alerts and notifications).
    """
    now = ensure_utc(now)
    wanted = WINDOWED_KINDS if kinds is None else WINDOWED_KINDS & {RuleKind(k) for k in kinds}
    result = EngineResult(now=now)
    _serialize_ticks(session)
    rules = _load_rules(session, frozenset(wanted), result)
    result.rules = len(rules)
    if not rules:
        return result
    tick = _Tick(session, now, result)
    by_kind: dict[RuleKind, list[_Rule]] = defaultdict(list)
    for rule in rules:
        by_kind[rule.kind].append(rule)
    outcomes: list[_Outcome] = []
    if by_kind[RuleKind.THRESHOLD]:
        outcomes += tick.threshold(by_kind[RuleKind.THRESHOLD])
    if by_kind[RuleKind.INACTIVITY]:
        outcomes += tick.inactivity(by_kind[RuleKind.INACTIVITY])
    if by_kind[RuleKind.DEVICE_OFFLINE]:
        outcomes += tick.device_offline(by_kind[RuleKind.DEVICE_OFFLINE])
    if by_kind[RuleKind.BATTERY_LOW]:
        outcomes += tick.battery_low(by_kind[RuleKind.BATTERY_LOW])
    for kind, evaluate in (
        (RuleKind.NIGHT_EXIT, tick.night_exit),
        (RuleKind.DATA_QUALITY, tick.data_quality),
    ):
        if kind in wanted:
            since = _momentary_since(session, kind, now)
            if by_kind[kind]:
                outcomes += evaluate(by_kind[kind], since)
            _advance_watermark(session, kind, now)
    _apply(session, tick, outcomes)
    if by_kind[RuleKind.INACTIVITY]:
        _setup_notices(session, tick)
    session.flush()  # repeats and resolutions are plain attribute changes until flushed
    log.info(
        "rules tick at %s: %d rules, findings %s, %d opened, %d repeated, %d resolved, %d held",
        now.isoformat(),
        result.rules,
        result.findings,
        len(result.opened),
        len(result.repeated),
        len(result.resolved),
        result.held,
    )
    return result
