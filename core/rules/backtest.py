"""Backtest: how often a rule (saved or still a draft) would have fired over recent stored data.

The replay steps through the last N days like the engine's minute tick, but every `step`
(5 minutes by default, for speed: an alarm shorter than a step may be missed, and times are
rounded to the step). At each step it hands the pure evaluators of core.rules.evaluate what the
engine would have seen then (the same windows and evaluator inputs, core.rules.kinds; the same
registry view, core.rules.world), and keeps the engine's episode book (core.rules.episodes):

- a new alert only when no unresolved one exists for the rule and subject; a new episode while
  one is still open counts as a repeat (its occurrence count), not a new alert;
- an alarm seen again in the same episode (hysteresis band, momentary kinds already alerted)
  counts nothing;
- auto-resolve closes the alert when the condition clears; nobody resolves alerts by hand in
  the replay (we cannot know when a person would have).

Event rules are instant (ingest): every stored event that matches counts as a firing.
What the registry only knows now is taken as it is now (devices, residents, learned routines);
device offline is judged from the stored messages (readings and events) and the stored history
of each device's status (device_status_changes: one row per change, heartbeats are not kept).

Speed: the database leaves out what cannot change the outcome (normal readings away from any
abnormal one; all but the latest message per step for offline). Measured on a busy 2-core
machine: 7 days of 20 wearables reporting every 10 s (1.2 million heart-rate readings) replay in
5-10 s for a threshold rule and 3-5 s for device offline, on SQLite and PostgreSQL; a day of it
in under a second. The page says how long each run took.
"""

from __future__ import annotations

import bisect
import logging
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Integer, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from core.rules import evaluate as ev
from core.rules import kinds
from core.rules.episodes import FIRES, EpisodeBook, Transition
from core.rules.events import event_rule_matches
from core.rules.kinds import (
    BATTERY_LOOKBACK,
    CHUNK,
    DOOR_PRIOR,
    MOMENTARY_MIN_LOOKBACK,
    MOTION_LOOKBACK,
    QUALITY_LOOKBACK,
    is_momentary,
)
from core.rules.params import (
    BatteryLowParams,
    DataQualityParams,
    DeviceOfflineParams,
    EventParams,
    InactivityParams,
    NightExitParams,
    RuleParamsError,
    ThresholdParams,
    parse_params,
)
from core.rules.world import (
    SubjectKey,
    World,
    WorldDevice,
    devices_reporting,
    replay_world,
    rolled_up,
    routines,
    subject_key,
)
from core.timeutil import ensure_utc, to_local
from models import (
    AlertRule,
    DeviceStatus,
    DeviceStatusChange,
    Event,
    QualityRun,
    Reading,
    RuleKind,
    RuleOverride,
    ScopeType,
)

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
MAX_DAYS = 30
DEFAULT_STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class RuleDraft:
    """A rule as the builder holds it, saved or not: kind, parameters, scope, auto-resolve.

    `overrides` maps a resident id to the parameters that replace the rule's for them (merged
    over `params`, as the engine does).
    """

    kind: RuleKind
    params: Mapping[str, Any]
    scope_type: ScopeType = ScopeType.SITE
    site_id: str | None = None
    resident_id: int | None = None
    device_type: str | None = None
    auto_resolve: bool = False
    overrides: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, rule: AlertRule) -> RuleDraft:
        """A saved rule as the engine judges it, with its per-resident overrides."""
        overrides = {
            o.resident_id: dict(o.params or {})
            for o in session.scalars(select(RuleOverride).where(RuleOverride.rule_id == rule.id))
        }
        return cls(
            kind=RuleKind(rule.kind),
            params=rule.params or {},
            scope_type=ScopeType(rule.scope_type or ScopeType.SITE),
            site_id=rule.site_id,
            resident_id=rule.resident_id,
            device_type=rule.device_type,
            auto_resolve=bool(rule.auto_resolve),
            overrides=overrides,
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """One time the rule would have fired for a subject."""

    subject_type: str
    subject_id: str
    label: str
    at: datetime
    new_alert: bool  # False: a repeat counted on the alert still open
    device_id: str | None = None


@dataclass
class BacktestResult:
    """What the replay found, with how much data it saw and how long it took."""

    kind: RuleKind
    start: datetime
    end: datetime
    step: timedelta
    firings: list[Firing] = field(default_factory=list)
    resolved: int = 0
    subjects: int = 0  # subjects (residents, devices, suites) the rule covers
    data_points: int = 0  # readings, events or runs the replay looked at
    elapsed_seconds: float = 0.0

    @property
    def has_data(self) -> bool:
        """Whether there was any stored data the rule could have judged."""
        return self.data_points > 0

    @property
    def fired(self) -> int:
        """Times the rule would have fired (new alerts and repeats)."""
        return len(self.firings)

    @property
    def new_alerts(self) -> int:
        """Alerts it would have opened."""
        return sum(1 for f in self.firings if f.new_alert)

    def frame(self) -> pd.DataFrame:
        """One row per firing: subject_type, subject_id, subject, at, new_alert, device_id."""
        columns = ["subject_type", "subject_id", "subject", "at", "new_alert", "device_id"]
        rows = [
            (f.subject_type, f.subject_id, f.label, f.at, f.new_alert, f.device_id)
            for f in self.firings
        ]
        return pd.DataFrame(rows, columns=columns)

    def per_subject(self) -> pd.DataFrame:
        """Per subject: times fired and new alerts, most first."""
        frame = self.frame()
        if frame.empty:
            return pd.DataFrame(columns=["subject", "fired", "new_alerts"])
        grouped = (
            frame.groupby(["subject_type", "subject_id", "subject"], sort=False)
            .agg(fired=("at", "size"), new_alerts=("new_alert", "sum"))
            .reset_index()
        )
        grouped["new_alerts"] = grouped["new_alerts"].astype(int)
        grouped = grouped.sort_values(["fired", "subject"], ascending=[False, True])
        return grouped[["subject", "fired", "new_alerts"]].reset_index(drop=True)

    def per_day(self, timezone: str = "UTC") -> pd.DataFrame:
        """Per local day of the window (every day, zeros included): times fired, new alerts."""
        first = to_local(self.start, timezone).date()
        last = to_local(self.end, timezone).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        fired = dict.fromkeys(days, 0)
        new = dict.fromkeys(days, 0)
        for f in self.firings:
            day = to_local(f.at, timezone).date()
            if day in fired:
                fired[day] += 1
                new[day] += int(f.new_alert)
        return pd.DataFrame(
            {"day": days, "fired": [fired[d] for d in days], "new_alerts": [new[d] for d in days]}
        )


def _reporting(
    session: Session, world: World, draft: RuleDraft, metric: str, start: datetime, end: datetime
) -> list[WorldDevice]:
    """Devices the rule covers that may have readings of `metric` in (start, end]."""
    devices = world.in_scope(draft)
    ids = devices_reporting(session, metric, {d.id: d.type for d in devices}, start, end)
    return [d for d in devices if d.id in ids]


# --- loading history


def _readings(
    session: Session, metric: str | None, device_ids: Iterable[str], start: datetime, end: datetime
) -> dict[str, list[ev.Sample]]:
    """Readings (of one metric, or all metrics when None) per device in (start, end], by time."""
    r = Reading.__table__.c
    out: dict[str, list[ev.Sample]] = defaultdict(list)
    ids = sorted(set(device_ids))
    for offset in range(0, len(ids), CHUNK):
        query = select(r.device_id, r.ts, r.value).where(
            r.device_id.in_(ids[offset : offset + CHUNK]), r.ts > start, r.ts <= end
        )
        if metric is not None:
            query = query.where(r.metric == metric)
        for device_id, ts, value in session.execute(query.order_by(r.device_id, r.ts)):
            out[device_id].append((ts, float(value)))
    return out


def _cleared_clause(column: Any, params: ThresholdParams) -> Any:
    """SQL: the value is back beyond the limit by the margin (evaluate.threshold_cleared)."""
    if params.op == ">":
        return column <= params.value - params.hysteresis
    if params.op == ">=":
        return column < params.value - params.hysteresis
    if params.op == "<":
        return column >= params.value + params.hysteresis
    return column > params.value + params.hysteresis


def _threshold_readings(
    session: Session,
    metric: str,
    device_ids: Iterable[str],
    start: datetime,
    end: datetime,
    param_sets: Iterable[ThresholdParams],
    ticks: tuple[datetime, timedelta],
) -> tuple[dict[str, list[ev.Sample]], int]:
    """The readings a threshold replay needs, per device, by time; and how many were stored.

    Most readings are normal (cleared under every parameter set): only those next to a reading
    that is not are loaded, with every reading that is not, and the latest reading before each
    tick (`ticks`: one tick, the step). At any tick the evaluator then sees the same latest
    sample, run and episode start as with every reading, at a fraction of the rows: the
    database drops the rest (window functions, on SQLite and PostgreSQL alike).
    """
    r = Reading.__table__.c
    sets = list(dict.fromkeys(param_sets))
    normal = and_(*(_cleared_clause(r.value, p) for p in sets))
    out: dict[str, list[ev.Sample]] = defaultdict(list)
    total = 0
    ids = sorted(set(device_ids))
    for offset in range(0, len(ids), CHUNK):
        chunk = ids[offset : offset + CHUNK]
        scope = and_(r.device_id.in_(chunk), r.metric == metric, r.ts > start, r.ts <= end)
        flag = case((normal, 1), else_=0).label("normal")
        bucket = _tick_index(session, r.ts, *ticks).label("bucket")
        flagged = select(r.device_id, r.ts, r.value, flag, bucket).where(scope).subquery()
        window = {"partition_by": flagged.c.device_id, "order_by": flagged.c.ts}
        marked = select(
            flagged.c.device_id,
            flagged.c.ts,
            flagged.c.value,
            flagged.c.normal,
            func.lag(flagged.c.normal).over(**window).label("before"),
            func.lead(flagged.c.normal).over(**window).label("after"),
            flagged.c.bucket,
            func.lead(flagged.c.bucket).over(**window).label("next_bucket"),
        ).subquery()
        query = (
            select(marked.c.device_id, marked.c.ts, marked.c.value)
            .where(
                or_(
                    marked.c.normal == 0,
                    marked.c.before == 0,
                    marked.c.after == 0,
                    marked.c.after.is_(None),
                    # The latest reading before a tick: what that tick sees last.
                    marked.c.next_bucket != marked.c.bucket,
                )
            )
            .order_by(marked.c.device_id, marked.c.ts)
        )
        total += session.scalar(select(func.count()).select_from(Reading).where(scope)) or 0
        for device_id, ts, value in session.execute(query):
            out[device_id].append((ensure_utc(ts), float(value)))
    return out, total


def _tick_index(session: Session, ts: Any, tick: datetime, step: timedelta) -> Any:
    """SQL: the index of the first replay tick at or after `ts` (ticks: `tick` + n × `step`).

    In whole milliseconds, so a reading exactly at a tick belongs to that tick on both backends.
    """
    step_ms = max(1, int(step.total_seconds() * 1000))
    if session.get_bind().dialect.name == "postgresql":
        origin = func.extract("epoch", tick)
        return func.ceil((func.extract("epoch", ts) - origin) * 1000 / step_ms)
    origin_day = func.julianday(tick.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "))
    ms = cast(func.round((func.julianday(ts) - origin_day) * 86_400_000), Integer)
    # Integer division truncates toward zero: add one where a positive remainder is left.
    return ms.op("/")(step_ms) + case((ms.op("%")(step_ms) > 0, 1), else_=0)


def _heard(
    session: Session,
    device_ids: Iterable[str],
    start: datetime,
    end: datetime,
    ticks: tuple[datetime, timedelta],
) -> tuple[dict[str, list[datetime]], int]:
    """Per device, its latest message (reading or event) between two ticks; and how many.

    `ticks` is (one tick, the step): the groups end where the replay's ticks fall.

    The replay only asks "when did it last speak before this step's tick": one message per step
    is enough, and the database groups the rest away.
    """
    seconds = max(1, int(ticks[1].total_seconds()))
    origin = int(ticks[0].timestamp())
    dialect = session.get_bind().dialect.name
    out: dict[str, list[datetime]] = defaultdict(list)
    total = 0
    ids = sorted(set(device_ids))
    for table in (Reading.__table__, Event.__table__):
        c = table.c
        if dialect == "postgresql":
            epoch: Any = func.floor((func.extract("epoch", c.ts) - origin) / seconds)
        else:
            epoch = cast((cast(func.strftime("%s", c.ts), Integer) - origin) / seconds, Integer)
        for offset in range(0, len(ids), CHUNK):
            query = (
                select(c.device_id, func.max(c.ts), func.count())
                .where(c.device_id.in_(ids[offset : offset + CHUNK]), c.ts > start, c.ts <= end)
                .group_by(c.device_id, epoch)
            )
            for device_id, ts, count in session.execute(query):
                out[device_id].append(ensure_utc(ts))
                total += count
    return {device_id: sorted(set(times)) for device_id, times in out.items()}, total


def _events(
    session: Session,
    types: Iterable[str] | None,
    device_ids: Iterable[str],
    start: datetime,
    end: datetime,
) -> dict[str, list[tuple[datetime, str]]]:
    """Events (of these types, or all when None) per device in [start, end], by time."""
    e = Event.__table__.c
    out: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    ids = sorted(set(device_ids))
    for offset in range(0, len(ids), CHUNK):
        query = select(e.device_id, e.ts, e.type).where(
            e.device_id.in_(ids[offset : offset + CHUNK]), e.ts >= start, e.ts <= end
        )
        if types is not None:
            query = query.where(e.type.in_(sorted(set(types))))
        for device_id, ts, kind in session.execute(query.order_by(e.ts)):
            out[device_id].append((ts, kind))
    return out


class _Timeline:
    """A device's samples with their times indexed, to cut the window each step sees."""

    __slots__ = ("samples", "times")

    def __init__(self, samples: Sequence[ev.Sample]) -> None:
        self.samples = list(samples)
        self.times = [ts for ts, _ in self.samples]

    def window(self, after: datetime, until: datetime) -> list[ev.Sample]:
        """Samples in (after, until]."""
        lo = bisect.bisect_right(self.times, after)
        hi = bisect.bisect_right(self.times, until)
        return self.samples[lo:hi]

    def latest(self, after: datetime, until: datetime) -> ev.Sample | None:
        """The latest sample in (after, until], if any."""
        hi = bisect.bisect_right(self.times, until)
        if hi == 0 or self.times[hi - 1] <= after:
            return None
        return self.samples[hi - 1]


# --- episodes, as the engine keeps them


class _Tracker:
    """The engine's alert bookkeeping for one rule (core.rules.episodes), on replayed ticks."""

    def __init__(self, result: BacktestResult, world: World, auto_resolve: bool) -> None:
        self.result = result
        self.world = world
        self.auto_resolve = auto_resolve
        self.momentary = is_momentary(result.kind)
        self.book = EpisodeBook()

    def apply(self, key: SubjectKey, finding: ev.Finding, now: datetime) -> Transition:
        """Book the finding at the tick `now`; count what fires or resolves."""
        held = finding.state is ev.State.ALARM and self.world.held(
            key, finding, now, self.momentary
        )
        transition = self.book.step(
            key, finding, now, momentary=self.momentary, auto_resolve=self.auto_resolve, held=held
        )
        if transition is Transition.CLEAR:
            self.result.resolved += 1
        elif transition in FIRES:
            self.fire(key, now, transition is Transition.OPEN, finding.device_id)
        return transition

    def fire(self, key: SubjectKey, at: datetime, new: bool, device_id: str | None) -> None:
        """Count one firing (a new alert, or a repeat on the open one)."""
        kind, ident = key
        self.result.firings.append(
            Firing(kind, str(ident), self.world.label(key), at, new, device_id)
        )


def _ticks(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    count = int((end - start) / step)
    return [start + step * (n + 1) for n in range(count)]


# --- kinds


def _threshold(
    session: Session,
    draft: RuleDraft,
    params: ThresholdParams,
    overrides: dict[int, Any],
    run: _Run,
) -> None:
    window = kinds.threshold_window(params, overrides)
    devices = _reporting(session, run.world, draft, params.metric, run.start - window, run.end)
    data, run.result.data_points = _threshold_readings(
        session,
        params.metric,
        [d.id for d in devices],
        run.start - window,
        run.end,
        [params, *overrides.values()],
        (run.start, run.step),
    )
    timelines = {device_id: _Timeline(samples) for device_id, samples in data.items()}
    subjects: dict[SubjectKey, list[WorldDevice]] = defaultdict(list)
    for d in devices:
        subjects[subject_key(d)].append(d)
    run.result.subjects = len(subjects)
    watched = {k: [d for d in ds if d.id in timelines] for k, ds in subjects.items()}
    watched = {k: ds for k, ds in watched.items() if ds}
    for now in run.ticks:
        after = now - window
        for key, ds in watched.items():
            rid = key[1] if key[0] == "resident" else None
            chosen = overrides.get(rid, params) if rid is not None else params
            series = [ev.Series(d.id, timelines[d.id].window(after, now)) for d in ds]
            series = [s for s in series if s.samples]
            if not series:
                continue
            for finding in ev.evaluate_threshold({key: series}, chosen, now):
                run.tracker.apply(key, finding, now)


def _event(session: Session, draft: RuleDraft, params: EventParams, run: _Run) -> None:
    devices = {d.id: d for d in run.world.in_scope(draft)}
    subjects = {subject_key(d) for d in devices.values()}
    run.result.subjects = len(subjects)
    found = _events(session, params.event_types, devices, run.start, run.end)
    matched: list[tuple[datetime, SubjectKey, str]] = []
    for device_id, events in found.items():
        d = devices[device_id]
        for ts, kind in events:
            event = _EventView(kind, d.id, d.site_id, d.resident_id, d.type)
            if event_rule_matches(params, draft, event):
                matched.append((ts, subject_key(d), d.id))
    run.result.data_points = len(matched)
    # Each matching event fires at once (ingest); it is a repeat while its alert is open.
    # Event alerts never resolve by themselves, and the replay cannot know when a person would.
    open_keys: set[SubjectKey] = set()
    for ts, key, device_id in sorted(matched, key=lambda m: m[0]):
        run.tracker.fire(key, ts, key not in open_keys, device_id)
        open_keys.add(key)


@dataclass(frozen=True, slots=True)
class _EventView:
    type: str
    device_id: str
    site_id: str
    resident_id: int | None
    device_type: str | None


def _inactivity(
    session: Session,
    draft: RuleDraft,
    params: InactivityParams,
    overrides: dict[int, Any],
    run: _Run,
) -> None:
    lookback = run.start - MOTION_LOOKBACK
    scoped = [d for d in run.world.in_scope(draft) if d.resident_id is not None]
    ids = devices_reporting(session, "motion", {d.id: d.type for d in scoped}, lookback, run.end)
    moves: dict[str, list[datetime]] = defaultdict(list)
    data: dict[str, list[datetime]] = defaultdict(list)  # any motion datum: readings, events
    for device_id, samples in _readings(session, "motion", ids, lookback, run.end).items():
        moves[device_id] += [ts for ts, value in samples if value > 0.5]
        data[device_id] += [ts for ts, _ in samples]
    everyone = [d.id for d in scoped]
    for device_id, events in _events(session, ["motion"], everyone, lookback, run.end).items():
        moves[device_id] += [ts for ts, _ in events]
        data[device_id] += [ts for ts, _ in events]
    run.result.data_points = sum(len(v) for v in moves.values())
    times = {device_id: sorted(v) for device_id, v in moves.items()}
    sent = {device_id: sorted(v) for device_id, v in data.items()}
    # As in the engine: a device is judged on motion when it sent motion data (in view, or
    # before: an hourly rollup of it).
    before = rolled_up(session, "motion", everyone, before=lookback)
    devices = [d for d in scoped if d.id in sent or d.id in before]
    per_resident: dict[int, list[WorldDevice]] = defaultdict(list)
    for d in devices:
        assert d.resident_id is not None
        per_resident[d.resident_id].append(d)
    run.result.subjects = len(per_resident)
    routine: dict[int, dict[int, float]] = {}
    if any(p.use_routine for p in (params, *overrides.values())) and per_resident:
        routine = routines(session, per_resident)
    if not run.result.has_data:
        return
    for now in run.ticks:
        for rid, ds in per_resident.items():
            sources = []
            firsts: dict[str, datetime] = {}
            for d in ds:
                seen = times.get(d.id, [])
                index = bisect.bisect_right(seen, now)
                last = (
                    seen[index - 1] if index and seen[index - 1] > now - MOTION_LOOKBACK else None
                )
                # The engine's view at this tick: the first datum of the last MOTION_LOOKBACK.
                datums = sent.get(d.id, [])
                first = bisect.bisect_right(datums, now - MOTION_LOOKBACK)
                if first < len(datums) and datums[first] <= now:
                    firsts[d.id] = datums[first]
                elif d.id not in before:
                    continue  # no motion data yet at this tick
                sources.append(ev.MotionSource(d.id, last))
            if not sources:
                continue  # the engine posts a setup notice, not an inactivity alert
            activity = kinds.activity(run.world, rid, sources, firsts, routine.get(rid, {}), now)
            finding = ev.inactivity_one(
                ("resident", rid), activity, overrides.get(rid, params), now
            )
            if finding is not None:
                run.tracker.apply(("resident", rid), finding, now)


def _status_changes(
    session: Session, device_ids: Iterable[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, str]]]:
    """Per device, its status changes in (start, end] after the one in force at start, by time."""
    c = DeviceStatusChange.__table__.c
    out: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    ids = sorted(set(device_ids))
    for offset in range(0, len(ids), CHUNK):
        chunk = ids[offset : offset + CHUNK]
        in_force = (
            select(c.device_id, func.max(c.at).label("at"))
            .where(c.device_id.in_(chunk), c.at <= start)
            .group_by(c.device_id)
            .subquery()
        )
        query = (
            select(c.device_id, c.at, c.status)
            .outerjoin(in_force, (in_force.c.device_id == c.device_id) & (in_force.c.at == c.at))
            .where(
                c.device_id.in_(chunk),
                or_(in_force.c.at.is_not(None), and_(c.at > start, c.at <= end)),
            )
            .order_by(c.device_id, c.at)
        )
        for device_id, at, status in session.execute(query):
            out[device_id].append((ensure_utc(at), str(status)))
    return out


def _device_offline(
    session: Session,
    draft: RuleDraft,
    params: DeviceOfflineParams,
    overrides: dict[int, Any],
    run: _Run,
) -> None:
    devices = run.world.in_scope(draft)
    ids = [d.id for d in devices]
    run.result.subjects = len(devices)
    lookback = run.start - timedelta(
        minutes=max([params.minutes] + [p.minutes for p in overrides.values()])
    )
    times, run.result.data_points = _heard(session, ids, lookback, run.end, (run.start, run.step))
    changes = _status_changes(session, ids, lookback, run.end)
    for device_id, device_changes in changes.items():
        # A status message is a message too: the device was heard when its status changed.
        times[device_id] = sorted(set(times.get(device_id, [])) | {at for at, _ in device_changes})
        run.result.data_points += len(device_changes)
    change_times = {device_id: [at for at, _ in found] for device_id, found in changes.items()}
    if not run.result.has_data:
        return
    for now in run.ticks:
        for d in devices:
            seen = times.get(d.id, [])
            index = bisect.bisect_right(seen, now)
            last_seen = seen[index - 1] if index else None
            registered = d.created_at if d.created_at is not None and d.created_at <= now else None
            if last_seen is None and registered is None:
                continue  # not installed yet at that time
            # The status in force at the tick, and since when.
            at_index = bisect.bisect_right(change_times.get(d.id, []), now)
            status_since, status = (
                changes[d.id][at_index - 1] if at_index else (None, DeviceStatus.UNKNOWN.value)
            )
            state = ev.DeviceState(
                d.id,
                status=status,
                status_since=status_since,
                last_seen=last_seen,
                registered_at=registered,
            )
            chosen = overrides.get(d.resident_id, params) if d.resident_id else params
            finding = ev.device_offline_one(("device", d.id), state, chosen, now)
            if finding is not None:
                run.tracker.apply(("device", d.id), finding, now)


def _battery_low(
    session: Session,
    draft: RuleDraft,
    params: BatteryLowParams,
    overrides: dict[int, Any],
    run: _Run,
) -> None:
    devices = _reporting(
        session, run.world, draft, "battery_pct", run.start - BATTERY_LOOKBACK, run.end
    )
    run.result.subjects = len(devices)
    data = _readings(
        session, "battery_pct", [d.id for d in devices], run.start - BATTERY_LOOKBACK, run.end
    )
    run.result.data_points = sum(len(s) for s in data.values())
    timelines = {device_id: _Timeline(samples) for device_id, samples in data.items()}
    for now in run.ticks:
        for d in devices:
            timeline = timelines.get(d.id)
            latest = timeline.latest(now - BATTERY_LOOKBACK, now) if timeline else None
            if latest is None:
                continue
            state = ev.DeviceState(d.id, battery_reading=latest[1])
            chosen = overrides.get(d.resident_id, params) if d.resident_id else params
            finding = ev.battery_low_one(("device", d.id), state, chosen)
            if finding is not None:
                run.tracker.apply(("device", d.id), finding, now)


def _night_exit(
    session: Session,
    draft: RuleDraft,
    params: NightExitParams,
    overrides: dict[int, Any],
    run: _Run,
) -> None:
    lookback = run.start - MOMENTARY_MIN_LOOKBACK
    scoped = run.world.in_scope(draft)
    ids = devices_reporting(
        session, "door_open", {d.id: d.type for d in scoped}, lookback - DOOR_PRIOR, run.end
    )
    readings = _readings(session, "door_open", ids, lookback - DOOR_PRIOR, run.end)
    events = _events(session, ["door_opened"], [d.id for d in scoped], lookback, run.end)
    # As in the engine: doors are door-type devices and any device that sent door data.
    doors = kinds.doors(scoped, readings, events)
    run.result.data_points = sum(len(v) for v in readings.values()) + sum(
        len(v) for v in events.values()
    )
    subjects: dict[SubjectKey, list[WorldDevice]] = defaultdict(list)
    for d in doors:
        subjects[subject_key(d)].append(d)
    run.result.subjects = len(subjects)
    if not run.result.has_data:
        return
    timelines = {device_id: _Timeline(samples) for device_id, samples in readings.items()}
    opened = {device_id: [ts for ts, _ in found] for device_id, found in events.items()}
    for now in run.ticks:
        since = kinds.momentary_since(now - run.step, now)
        for key, ds in subjects.items():
            sources = []
            for d in ds:
                timeline = timelines.get(d.id)
                samples = timeline.window(since - DOOR_PRIOR, now) if timeline else []
                times = [ts for ts in opened.get(d.id, ()) if since <= ts <= now]
                sources.append(ev.DoorSource(d.id, samples, times))
            rid = key[1] if key[0] == "resident" else None
            chosen = overrides.get(rid, params) if rid is not None else params
            watch = kinds.door_watch(run.world, key, sources)
            finding = ev.night_exit_one(key, watch, chosen, now, since)
            if finding is not None:
                run.tracker.apply(key, finding, now)


def _data_quality(session: Session, draft: RuleDraft, params: DataQualityParams, run: _Run) -> None:
    q = QualityRun.__table__.c
    runs = [
        ev.QualityOutcome(suite, finished, bool(success), failed or 0, evaluated or 0, run_id)
        for run_id, suite, finished, success, failed, evaluated in session.execute(
            select(q.id, q.suite, q.finished_at, q.success, q.failed, q.evaluated)
            .where(
                q.finished_at > run.start - QUALITY_LOOKBACK,
                q.finished_at <= run.end,
                q.success.is_not(None),
            )
            .order_by(q.finished_at)
        )
    ]
    wanted = set(params.suites)
    runs = [r for r in runs if not wanted or r.suite in wanted]
    run.result.data_points = len(runs)
    run.result.subjects = len({r.suite for r in runs})
    times = [r.finished_at for r in runs]
    for now in run.ticks:
        lo = bisect.bisect_right(times, now - QUALITY_LOOKBACK)
        hi = bisect.bisect_right(times, now)
        since = kinds.momentary_since(now - run.step, now)
        for finding in ev.evaluate_data_quality(runs[lo:hi], params, now, since):
            run.tracker.apply(("suite", str(finding.key)), finding, now)


@dataclass
class _Run:
    world: World
    result: BacktestResult
    tracker: _Tracker
    start: datetime
    end: datetime
    step: timedelta
    ticks: list[datetime]


def backtest(
    session: Session,
    draft: RuleDraft,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    step: timedelta = DEFAULT_STEP,
) -> BacktestResult:
    """Replay a rule over the `days` before `now` (at most MAX_DAYS), stepping every `step`.

    The parameters must be valid (RuleParamsError otherwise); nothing is written.
    """
    started = clock.perf_counter()
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}")
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    kind = RuleKind(draft.kind)
    params = parse_params(kind, draft.params)
    overrides: dict[int, Any] = {}
    for rid, extra in draft.overrides.items():
        try:
            overrides[rid] = parse_params(kind, {**draft.params, **extra})
        except RuleParamsError as error:
            # As in the engine: the rule's own parameters still protect this resident.
            log.warning("override for resident %s ignored in the backtest: %s", rid, error)
    end = ensure_utc(now)
    start = end - timedelta(days=days)
    result = BacktestResult(kind, start, end, step)
    world = replay_world(session, start, end)
    run = _Run(
        world,
        result,
        _Tracker(result, world, draft.auto_resolve),
        start,
        end,
        step,
        _ticks(start, end, step),
    )
    match params:
        case ThresholdParams():
            _threshold(session, draft, params, overrides, run)
        case EventParams():
            _event(session, draft, params, run)
        case InactivityParams():
            _inactivity(session, draft, params, overrides, run)
        case DeviceOfflineParams():
            _device_offline(session, draft, params, overrides, run)
        case BatteryLowParams():
            _battery_low(session, draft, params, overrides, run)
        case NightExitParams():
            _night_exit(session, draft, params, overrides, run)
        case DataQualityParams():
            _data_quality(session, draft, params, run)
    result.elapsed_seconds = clock.perf_counter() - started
    log.info(
        "backtest of a %s rule over %d days: %d data points, fired %d (%d new alerts) in %.2f s",
        kind.value,
        days,
        result.data_points,
        result.fired,
        result.new_alerts,
        result.elapsed_seconds,
    )
    return result
