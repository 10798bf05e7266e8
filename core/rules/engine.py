"""The windowed rule engine: one tick evaluates every enabled windowed rule and applies findings.

A tick loads the rules, the registry and only the data each rule needs for its window, in a few
bulk queries (never one per device), runs the pure evaluators of core.rules.evaluate, then opens,
repeats or auto-resolves alerts through core.alerts.lifecycle in the caller's transaction.

Idempotent (the episode book, core.rules.episodes, shared with the backtest): an alarm opens an
alert when none is open for the rule and subject; an open alert counts a repeat only when a new
episode began (the condition cleared and came back), so running the same tick twice changes
nothing. Momentary kinds (night exit, data quality) also skip episodes that any earlier alert,
even a resolved one, was about. On PostgreSQL, ticks take a transaction advisory lock, so two
ticks at once run one after the other; lifecycle's unique index and savepoint remain the last
line against a duplicate alert. Each threshold rule reads only its own window
(core.rules.kinds.threshold_window), whatever other rules read the same metric.

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
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.i18n import translate
from core.rules import evaluate as ev
from core.rules import kinds
from core.rules.describe import describe_rule
from core.rules.episodes import FIRES, EpisodeBook, Transition
from core.rules.kinds import (
    BATTERY_LOOKBACK,
    DOOR_PRIOR,
    MOMENTARY_MAX_CATCHUP,
    MOTION_LOOKBACK,
    QUALITY_LOOKBACK,
    WINDOWED_KINDS,
    chunks,
    is_momentary,
)
from core.rules.params import (
    DataQualityParams,
    RuleParamsError,
    parse_params,
)
from core.rules.world import (
    WorldDevice,
    devices_reporting,
    live_world,
    rolled_up,
    routines,
    subject_key,
)
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
    RuleKind,
    RuleOverride,
    Severity,
)

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the engine ("IoTCare rules" in spirit; any constant will do).
LOCK_KEY = 0x10CA_4E01
# A new resident without motion data gets a setup notice only after this long: at a demo's start
# or a resident's admission the sensor's first reading is usually a minute away.
SETUP_GRACE = timedelta(minutes=30)


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


@dataclass
class _Rule:
    rule: AlertRule
    kind: RuleKind
    # The kind's parameter model (core.rules.params); Any, as each kind has its own.
    params: Any
    overrides: dict[int, Any] = field(default_factory=dict)

    def params_for(self, resident_id: int | None) -> Any:
        """The resident's override when there is one, else the rule's own parameters."""
        return kinds.params_for(self.params, self.overrides, resident_id)


@dataclass(frozen=True, slots=True)
class _Outcome:
    rule: _Rule
    finding: ev.Finding
    # ("resident", id), ("device", id) or ("suite", name): the full Subject is built only
    # for the few findings that open, repeat or resolve an alert.
    key: tuple[str, Any]


class _Tick:
    """One evaluation: shared registry and data, outcomes per rule."""

    def __init__(self, session: Session, now: datetime, result: EngineResult) -> None:
        self.session = session
        self.now = now
        self.result = result
        self.registry = live_world(session, now)
        self.holds = self.registry.holds
        # Inactivity: residents needing a setup notice (-> a motion sensor id, if any), and
        # residents judged on their motion data.
        self.setup: dict[int, str | None] = {}
        self.judged: set[int] = set()

    # --- loading

    def in_scope(self, rule: _Rule) -> list[WorldDevice]:
        """Devices the rule covers, of any type; their residents must be active."""
        return self.registry.in_scope(rule.rule)

    def reporting(self, metric: str, devices: Iterable[WorldDevice], start: datetime) -> set[str]:
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
        for chunk in chunks(device_ids):
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
        for chunk in chunks(device_ids):
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
        for chunk in chunks(device_ids):
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
        """Whether a silence covers the finding's subject now (see World.held)."""
        return self.registry.held(
            outcome.key, outcome.finding, self.now, is_momentary(outcome.rule.kind)
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

    # --- kinds

    def threshold(self, rules: Sequence[_Rule]) -> list[_Outcome]:
        starts: dict[str, datetime] = {}
        devices: dict[int, list[WorldDevice]] = {}
        for rule in rules:
            metric = rule.params.metric
            devices[rule.rule.id] = self.in_scope(rule)
            start = self.now - kinds.threshold_window(rule.params, rule.overrides)
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
            # Only this rule's window (others on the metric may read further back).
            after = self.now - kinds.threshold_window(rule.params, rule.overrides)
            groups: dict[Any, dict[Hashable, list[ev.Series]]] = defaultdict(
                lambda: defaultdict(list)
            )
            for d in devices[rule.rule.id]:
                samples = [s for s in data[metric].get(d.id, ()) if s[0] > after]
                if samples:
                    params = rule.params_for(d.resident_id)
                    groups[params][subject_key(d)].append(ev.Series(d.id, samples))
            for params, subjects in groups.items():
                found += self.outcomes(rule, ev.evaluate_threshold(subjects, params, self.now))
        return found

    def inactivity(self, rules: Sequence[_Rule]) -> list[_Outcome]:
        start = self.now - MOTION_LOOKBACK
        scoped: dict[str, WorldDevice] = {}
        covered: set[int] = set()  # residents some inactivity rule watches over
        per_rule: dict[int, list[WorldDevice]] = {}
        for rule in rules:
            per_rule[rule.rule.id] = [d for d in self.in_scope(rule) if d.resident_id]
            scoped |= {d.id: d for d in per_rule[rule.rule.id]}
            covered |= {d.resident_id for d in per_rule[rule.rule.id] if d.resident_id}
            covered |= self.registry.deviceless_residents(rule.rule)
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
        routine: dict[int, dict[int, float]] = {}
        if any(p.use_routine for rule in rules for p in (rule.params, *rule.overrides.values())):
            routine = routines(self.session, {scoped[i].resident_id for i in motion_devices})
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
                activity = kinds.activity(
                    self.registry, rid, motion, first_data, routine.get(rid, {}), self.now
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

    def _device_states(
        self, devices: Iterable[WorldDevice], battery: dict[str, float] | None = None
    ) -> Iterator[tuple[WorldDevice, ev.DeviceState]]:
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
        doors = {rule_id: kinds.doors(found, readings, events) for rule_id, found in scoped.items()}
        found: list[_Outcome] = []
        for rule in rules:
            watches: dict[Any, dict[Hashable, list[ev.DoorSource]]] = defaultdict(
                lambda: defaultdict(list)
            )
            for d in doors[rule.rule.id]:
                source = ev.DoorSource(d.id, readings.get(d.id, ()), events.get(d.id, ()))
                watches[rule.params_for(d.resident_id)][subject_key(d)].append(source)
            for params, subjects in watches.items():
                watch = {
                    key: kinds.door_watch(self.registry, key, sources)  # type: ignore[arg-type]
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
    for chunk in chunks(by_id):
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
    return kinds.momentary_since(mark.watermark if mark is not None else None, now)


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


def _load_book(
    session: Session, outcomes: Sequence[_Outcome], now: datetime
) -> tuple[EpisodeBook, dict[str, uuid.UUID]]:
    """The episode book of the outcomes' rules, read from their alerts; and the open alerts' ids.

    An open alert's episode is the newest one its details name (else when it was last seen);
    momentary kinds remember the latest episode any alert of the last day was about.
    """
    book = EpisodeBook()
    ids: dict[str, uuid.UUID] = {}
    a = Alert.__table__.c
    for chunk in chunks(o.rule.rule.id for o in outcomes):
        for alert_id, key, details, last_seen in session.execute(
            select(a.id, a.dedupe_key, a.details, a.last_seen_at).where(
                a.rule_id.in_(chunk), a.status != AlertStatus.RESOLVED.value
            )
        ):
            book.open[key] = _episode(details) or last_seen
            ids[key] = alert_id
    momentary = sorted({o.rule.rule.id for o in outcomes if is_momentary(o.rule.kind)})
    if momentary:
        oldest = now - MOMENTARY_MAX_CATCHUP
        for key, details in session.execute(
            select(a.dedupe_key, a.details).where(
                a.rule_id.in_(momentary), a.last_seen_at >= oldest
            )
        ):
            episode = _episode(details)
            seen = book.remembered.get(key)
            if episode is not None and (seen is None or episode > seen):
                book.remembered[key] = episode
    return book, ids


def _apply(session: Session, tick: _Tick, outcomes: Sequence[_Outcome]) -> None:
    """Open, repeat or resolve alerts for the findings (as the episode book decides), through
    the alert lifecycle."""
    result = tick.result
    now = tick.now
    book, alert_ids = _load_book(session, outcomes, now)
    note = translate("rules.finding.resolved", "en")
    descriptions: dict[int, str] = {}
    for outcome in outcomes:
        rule, finding = outcome.rule, outcome.finding
        result.findings[finding.state.value] = result.findings.get(finding.state.value, 0) + 1
        key = lifecycle.dedupe_key(
            rule.rule.id, rule.kind, Subject(outcome.key[0], str(outcome.key[1]))
        )
        held = finding.state is ev.State.ALARM and tick.held(outcome)
        transition = book.step(
            key,
            finding,
            now,
            momentary=is_momentary(rule.kind),
            auto_resolve=bool(rule.rule.auto_resolve),
            held=held,
        )
        if transition is Transition.HELD:
            result.held += 1
        elif transition is Transition.CLEAR:
            alert = lifecycle.resolve(session, alert_ids.pop(key), None, note, at=now)
            result.resolved.append(alert.id)
        elif transition in FIRES:
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
            alert_ids[key] = raised.alert.id


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
    for chunk in chunks(keys[rid] for rid in tick.judged):
        for key, alert_id in session.execute(
            select(a.dedupe_key, a.id).where(
                a.dedupe_key.in_(chunk), a.status != AlertStatus.RESOLVED.value
            )
        ):
            open_notices[key] = alert_id
    # ...and, only for the few residents still without data, any notice ever posted.
    posted: set[str] = set()
    for chunk in chunks(keys[rid] for rid in tick.setup):
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
