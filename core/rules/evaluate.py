"""Pure rule evaluation: one function per windowed rule kind, over plain data, no database.

Each function takes what a rule needs about its subjects (samples, last motion, device state,
quality runs), the rule's parameters and the current time, and returns one `Finding` per subject
it could judge:

- ALARM: the condition holds now; `since` is when this episode began (None when it began before
  the data handed in), so the engine can tell a repeat from the same episode seen again;
- CLEAR: the condition is over (for auto-resolve);
- HOLD: neither, e.g. a value inside the hysteresis band: whatever alert is open stays open.

Subjects with nothing to judge (no data, only quarantined devices) get no finding. Every
datetime is timezone-aware UTC; local times are computed with zoneinfo.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from core.rules.params import (
    BatteryLowParams,
    DataQualityParams,
    DeviceOfflineParams,
    InactivityParams,
    NightExitParams,
    ThresholdParams,
)
from models.enums import DeviceStatus

Sample = tuple[datetime, float]
# A door_opened event and the door_open reading of the same opening arrive close together.
OPENING_MERGE = timedelta(minutes=2)


class State(StrEnum):
    """What a rule concluded about one subject."""

    ALARM = "alarm"
    CLEAR = "clear"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Finding:
    """One subject's state under one rule, with what a message about it needs."""

    key: Hashable
    state: State
    since: datetime | None = None
    device_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


# --- local time windows


def in_window(local: time, start: time, end: time) -> bool:
    """Whether a local time of day is in [start, end); the window may cross midnight.

    start == end means the whole day.
    """
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end


def window_began(now: datetime, timezone: str, start: time, end: time) -> datetime | None:
    """When the local window [start, end) that contains `now` began (UTC), or None if outside."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if not in_window(clock, start, end):
        return None
    day = local.date()
    # In a window that crossed midnight (or a whole-day one), the start was yesterday when
    # the clock is not yet past it today.
    if (start >= end) and clock < start:
        day -= timedelta(days=1)
    began = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
    return min(began, now)


def local_hhmm(value: datetime, timezone: str) -> str:
    """'23:05': a UTC instant as the local time of day people read."""
    return value.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


# --- threshold


@dataclass(frozen=True, slots=True)
class Series:
    """One device's samples of a metric, oldest first."""

    device_id: str
    samples: Sequence[Sample]
    quarantined: bool = False


def _violates(op: str, value: float, limit: float) -> bool:
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    return value <= limit


def _cleared(op: str, value: float, limit: float, margin: float) -> bool:
    # Back beyond the limit by the margin: the same comparison, shifted, no longer holds.
    if op in (">", ">="):
        return not _violates(op, value, limit - margin)
    return not _violates(op, value, limit + margin)


def threshold_cleared(params: ThresholdParams, value: float) -> bool:
    """Whether a value is back beyond the limit by the hysteresis (clears an alarm)."""
    return _cleared(params.op, value, params.value, params.hysteresis)


def threshold_series(series: Series, params: ThresholdParams, now: datetime) -> Finding | None:
    """One device: ALARM when the condition held for for_minutes up to its latest sample.

    CLEAR only once the latest value is back beyond the limit by the hysteresis; in between
    (the band) it is HOLD, so a value wavering around the limit does not flap.
    """
    if series.quarantined:
        return None
    samples = [s for s in series.samples if s[0] <= now]
    if not samples:
        return None
    op, limit, margin = params.op, params.value, params.hysteresis
    last_ts, last_value = samples[-1]
    common = {"metric": params.metric, "op": op, "limit": limit, "value": last_value}
    if _cleared(op, last_value, limit, margin):
        return Finding(series.device_id, State.CLEAR, device_id=series.device_id, details=common)
    run_start: datetime | None = None
    index = len(samples) - 1
    while index >= 0 and _violates(op, samples[index][1], limit):
        run_start = samples[index][0]
        index -= 1
    # The episode began after the latest cleared value: dips into the band do not end it.
    index = len(samples) - 1
    while index >= 0 and not _cleared(op, samples[index][1], limit, margin):
        index -= 1
    episode = samples[index + 1][0] if index >= 0 else None
    if run_start is not None and last_ts - run_start >= timedelta(minutes=params.for_minutes):
        details = {
            **common,
            "since": _iso(run_start),
            "minutes": _minutes(last_ts - run_start),
            "at": _iso(last_ts),
        }
        return Finding(
            series.device_id, State.ALARM, episode, device_id=series.device_id, details=details
        )
    return Finding(series.device_id, State.HOLD, device_id=series.device_id, details=common)


def combine(key: Hashable, parts: Iterable[Finding]) -> Finding | None:
    """One subject from its devices' findings: any ALARM, else any HOLD, else CLEAR."""
    found = list(parts)
    alarms = [f for f in found if f.state is State.ALARM]
    if alarms:
        # The longest-running alarm speaks for the subject; an episode of unknown start
        # (None) means the subject has been in alarm since before the data.
        first = min(alarms, key=lambda f: f.since or datetime.min.replace(tzinfo=UTC))
        since = None if any(f.since is None for f in alarms) else first.since
        return Finding(key, State.ALARM, since, first.device_id, first.details)
    for state in (State.HOLD, State.CLEAR):
        chosen = [f for f in found if f.state is state]
        if chosen:
            return Finding(key, state, None, chosen[0].device_id, chosen[0].details)
    return None


def evaluate_threshold(
    subjects: Mapping[Hashable, Sequence[Series]], params: ThresholdParams, now: datetime
) -> list[Finding]:
    """Threshold sustained for a duration, per subject (a resident's devices, or one device)."""
    findings = []
    for key, sources in subjects.items():
        combined = combine(
            key, (f for s in sources if (f := threshold_series(s, params, now)) is not None)
        )
        if combined is not None:
            findings.append(combined)
    return findings


# --- inactivity


@dataclass(frozen=True, slots=True)
class MotionSource:
    """A device that reports movement, with the latest time it did (None: not in the data)."""

    device_id: str
    last_motion: datetime | None
    quarantined: bool = False


@dataclass(frozen=True, slots=True)
class Activity:
    """A resident's movement: active hours in their timezone, motion sources, learned routine."""

    timezone: str
    active_start: time
    active_end: time
    sources: Sequence[MotionSource]
    # Local hour (0-23) -> the usual longest gap between movements, in minutes.
    routine: Mapping[int, float] = field(default_factory=dict)
    # Whether any motion data (a reading of any value, or an event) was ever received: without
    # it there is nothing to judge, and the engine posts a setup notice instead.
    has_data: bool = True
    # When the resident's motion data began, if after the start of the data handed in: quiet
    # time before it is not known to be quiet (a sensor just installed, or back after a gap).
    data_since: datetime | None = None


def inactivity_limit(
    activity: Activity, params: InactivityParams, now: datetime
) -> tuple[float, str]:
    """Minutes without movement that alarm now, and why: 'routine' (usual gap × factor) or 'fixed'.

    The routine of the current local hour is used when asked for and learned, kept within
    [min_minutes, max_minutes]; else max_minutes.
    """
    if params.use_routine:
        hour = now.astimezone(ZoneInfo(activity.timezone)).hour
        usual = activity.routine.get(hour)
        if usual is not None and usual > 0:
            floor = min(params.min_minutes, params.max_minutes)
            return min(max(usual * params.factor, floor), params.max_minutes), "routine"
    return float(params.max_minutes), "fixed"


def inactivity_one(
    key: Hashable, activity: Activity, params: InactivityParams, now: datetime
) -> Finding | None:
    """One resident: ALARM when no movement for the limit inside the current active hours."""
    live = [s for s in activity.sources if not s.quarantined]
    if not live or not activity.has_data:
        return None
    if activity.data_since is not None and activity.data_since > now:
        return None  # no data yet at this time
    seen = [s for s in live if s.last_motion is not None and s.last_motion <= now]
    latest = max(seen, key=lambda s: s.last_motion) if seen else None  # type: ignore[arg-type,return-value]
    last_motion = latest.last_motion if latest else None
    device_id = latest.device_id if latest else live[0].device_id
    limit, source = inactivity_limit(activity, params, now)
    details: dict[str, Any] = {
        "last_motion": _iso(last_motion),
        "limit_minutes": round(limit, 1),
        "limit_source": source,
    }
    began = window_began(now, activity.timezone, activity.active_start, activity.active_end)
    if began is not None:
        # Quiet time counts from the last movement, or from when the active hours (or the
        # motion data) began.
        quiet_from = max(began, last_motion or began, activity.data_since or began)
        quiet = now - quiet_from
        if quiet >= timedelta(minutes=limit):
            details |= {
                "since": _iso(quiet_from),
                "local_since": local_hhmm(quiet_from, activity.timezone),
                "quiet_minutes": _minutes(quiet),
            }
            return Finding(key, State.ALARM, quiet_from, device_id, details)
    if last_motion is not None and now - last_motion < timedelta(minutes=limit):
        return Finding(key, State.CLEAR, None, device_id, details)
    return Finding(key, State.HOLD, None, device_id, details)


def evaluate_inactivity(
    subjects: Mapping[Hashable, Activity], params: InactivityParams, now: datetime
) -> list[Finding]:
    """No movement in active hours for longer than the limit (fixed, or from the routine)."""
    return [
        f
        for key, activity in subjects.items()
        if (f := inactivity_one(key, activity, params, now)) is not None
    ]


# --- device offline and battery


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A device as the registry knows it, with its latest battery reading."""

    device_id: str
    status: str = DeviceStatus.UNKNOWN.value
    status_since: datetime | None = None  # when `status` began, if known
    last_seen: datetime | None = None
    registered_at: datetime | None = None
    battery: int | None = None  # from the status topic
    battery_reading: float | None = None  # the latest battery_pct reading
    quarantined: bool = False


def device_offline_one(
    key: Hashable, device: DeviceState, params: DeviceOfflineParams, now: datetime
) -> Finding | None:
    """One device: ALARM when silent for `minutes` (or never heard since registered), or offline
    for `minutes`.

    An offline status must be held for the rule's minutes, counted from when the device went
    offline (`status_since`; the last message when that is not known): a device that drops off
    for a moment and comes back does not alarm. Until then the finding is HOLD.
    """
    if device.quarantined:
        return None
    limit = timedelta(minutes=params.minutes)
    status = str(device.status)
    said_offline = status == DeviceStatus.OFFLINE.value
    reference = device.last_seen or device.registered_at
    details: dict[str, Any] = {
        "status": status,
        "last_seen": _iso(device.last_seen),
        "never_seen": device.last_seen is None,
    }
    if reference is not None:
        details["silent_minutes"] = _minutes(max(now - reference, timedelta(0)))
    starts = []
    offline_since = (device.status_since or reference) if said_offline else None
    if offline_since is not None:
        details["offline_since"] = _iso(offline_since)
        details["offline_minutes"] = _minutes(max(now - offline_since, timedelta(0)))
        if now - offline_since >= limit:
            starts.append(offline_since)
    if reference is not None and now - reference >= limit:
        starts.append(reference)
    if starts:
        since = min(starts)
        details["since"] = _iso(since)
        return Finding(key, State.ALARM, since, device.device_id, details)
    if not said_offline and device.last_seen is not None and now - device.last_seen < limit:
        return Finding(key, State.CLEAR, None, device.device_id, details)
    return Finding(key, State.HOLD, None, device.device_id, details)


def evaluate_device_offline(
    devices: Mapping[Hashable, DeviceState], params: DeviceOfflineParams, now: datetime
) -> list[Finding]:
    """No message for N minutes, or the status topic (or last will) said offline N minutes ago."""
    return [
        f
        for key, device in devices.items()
        if (f := device_offline_one(key, device, params, now)) is not None
    ]


def battery_level(device: DeviceState) -> tuple[float, str] | None:
    """The battery percentage and where it came from: the latest reading, else the status."""
    if device.battery_reading is not None:
        return float(device.battery_reading), "reading"
    if device.battery is not None:
        return float(device.battery), "status"
    return None


def battery_low_one(key: Hashable, device: DeviceState, params: BatteryLowParams) -> Finding | None:
    """One device: ALARM below the level; CLEAR once back at the level plus the margin."""
    if device.quarantined:
        return None
    level = battery_level(device)
    if level is None:
        return None
    pct, source = level
    details = {"battery_pct": pct, "source": source, "below_pct": params.below_pct}
    if pct < params.below_pct:
        return Finding(key, State.ALARM, None, device.device_id, details)
    if pct >= params.below_pct + params.hysteresis:
        return Finding(key, State.CLEAR, None, device.device_id, details)
    return Finding(key, State.HOLD, None, device.device_id, details)


def evaluate_battery_low(
    devices: Mapping[Hashable, DeviceState], params: BatteryLowParams
) -> list[Finding]:
    """Battery below a percentage, from the latest battery_pct reading or the status topic."""
    return [
        f
        for key, device in devices.items()
        if (f := battery_low_one(key, device, params)) is not None
    ]


# --- night exit


@dataclass(frozen=True, slots=True)
class DoorSource:
    """A door sensor: its door_open samples (oldest first) and door_opened event times."""

    device_id: str
    samples: Sequence[Sample] = ()
    opened_events: Sequence[datetime] = ()
    quarantined: bool = False


@dataclass(frozen=True, slots=True)
class DoorWatch:
    """A resident's (or a site's) doors and the timezone their night is in."""

    timezone: str
    doors: Sequence[DoorSource]
    # The resident's active hours (local start, end); their night is the rest of the day when
    # the rule follows active hours. None: not a resident's doors.
    active_hours: tuple[time, time] | None = None


def door_openings(door: DoorSource, since: datetime, now: datetime) -> list[datetime]:
    """When the door opened in [since, now]: door_opened events and closed→open readings.

    A reading that is open with no earlier reading is not an opening: the door may have been
    open for hours. Openings close together (event and reading of one opening) count once.
    """
    times = [ts for ts in door.opened_events if since <= ts <= now]
    previous: float | None = None
    for ts, value in door.samples:
        if ts > now:
            break
        if value >= 0.5 and previous is not None and previous < 0.5 and ts >= since:
            times.append(ts)
        previous = value
    merged: list[datetime] = []
    for ts in sorted(times):
        if merged and ts - merged[-1] <= OPENING_MERGE:
            continue
        merged.append(ts)
    return merged


def night_exit_one(
    key: Hashable, watch: DoorWatch, params: NightExitParams, now: datetime, since: datetime
) -> Finding | None:
    """One subject: ALARM for the latest door opening since `since` inside the local night."""
    live = [d for d in watch.doors if not d.quarantined]
    if not live:
        return None
    zone = ZoneInfo(watch.timezone)
    start, end = params.window(watch.active_hours)
    at_night: list[tuple[datetime, str]] = []
    for door in live:
        for ts in door_openings(door, since, now):
            if in_window(ts.astimezone(zone).time().replace(tzinfo=None), start, end):
                at_night.append((ts, door.device_id))
    if at_night:
        opened, device_id = max(at_night)
        details = {
            "opened_at": _iso(opened),
            "local_time": local_hhmm(opened, watch.timezone),
            "openings": len(at_night),
            "since": _iso(opened),
        }
        return Finding(key, State.ALARM, opened, device_id, details)
    if not in_window(now.astimezone(zone).time().replace(tzinfo=None), start, end):
        return Finding(key, State.CLEAR, None, live[0].device_id)  # the night is over
    return Finding(key, State.HOLD, None, live[0].device_id)


def evaluate_night_exit(
    subjects: Mapping[Hashable, DoorWatch],
    params: NightExitParams,
    now: datetime,
    since: datetime,
) -> list[Finding]:
    """A door opened between the night's start and end, in the subject's local time."""
    return [
        f
        for key, watch in subjects.items()
        if (f := night_exit_one(key, watch, params, now, since)) is not None
    ]


# --- data quality


@dataclass(frozen=True, slots=True)
class QualityOutcome:
    """A finished data-quality run."""

    suite: str
    finished_at: datetime
    success: bool
    failed: int = 0
    evaluated: int = 0
    run_id: int | None = None


def evaluate_data_quality(
    runs: Sequence[QualityOutcome], params: DataQualityParams, now: datetime, since: datetime
) -> list[Finding]:
    """A run of a listed suite (any suite when none is listed) failed since `since`.

    A suite whose latest run passed is CLEAR.
    """
    wanted = set(params.suites)
    by_suite: dict[str, list[QualityOutcome]] = {}
    for run in runs:
        if run.finished_at <= now and (not wanted or run.suite in wanted):
            by_suite.setdefault(run.suite, []).append(run)
    findings = []
    for suite, suite_runs in sorted(by_suite.items()):
        suite_runs.sort(key=lambda r: r.finished_at)
        failed = [r for r in suite_runs if not r.success and r.finished_at >= since]
        if failed:
            run = failed[-1]
            details = {
                "suite": suite,
                "run_id": run.run_id,
                "failed": run.failed,
                "evaluated": run.evaluated,
                "since": _iso(run.finished_at),
            }
            findings.append(Finding(suite, State.ALARM, run.finished_at, None, details))
        elif suite_runs[-1].success:
            findings.append(Finding(suite, State.CLEAR, None, None, {"suite": suite}))
        else:
            findings.append(Finding(suite, State.HOLD, None, None, {"suite": suite}))
    return findings
