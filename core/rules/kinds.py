"""One table of rule kinds, and what the engine and the backtest judge of each alike.

Each windowed kind is judged in three steps: gather (what the rule sees at a tick: live, from the
database at `now`, in core.rules.engine; or replayed, from a range loaded once, in
core.rules.backtest), evaluate (the pure evaluators of core.rules.evaluate, over inputs built
here once for both sources) and book (core.rules.episodes: open, repeat, same or clear). The
windows a tick looks back over are the same constants for both, kept here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.contract.catalogue import DEVICE_METRICS
from core.rules import evaluate as ev
from models import RuleKind

if TYPE_CHECKING:
    from core.rules.world import World

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

# Device types that are doors: judged by night-exit rules even before their first message.
DOORS = frozenset(t.value for t, metrics in DEVICE_METRICS.items() if "door_open" in metrics)


@dataclass(frozen=True, slots=True)
class Kind:
    """How a rule kind is judged: by the tick or on arrival, once per episode or per tick."""

    kind: RuleKind
    windowed: bool  # evaluated by the engine's tick (event rules: by ingest, on arrival)
    momentary: bool  # each episode judged once (an opening, a failed run), not a lasting state
    metric: str | None  # the reading it reads (threshold: the rule's own metric)
    lookback: timedelta | None  # how far before a tick it looks (threshold: per rule)


KINDS: dict[RuleKind, Kind] = {
    k.kind: k
    for k in (
        Kind(RuleKind.THRESHOLD, True, False, None, None),
        Kind(RuleKind.INACTIVITY, True, False, "motion", MOTION_LOOKBACK),
        Kind(RuleKind.DEVICE_OFFLINE, True, False, None, None),
        Kind(RuleKind.BATTERY_LOW, True, False, "battery_pct", BATTERY_LOOKBACK),
        Kind(RuleKind.NIGHT_EXIT, True, True, "door_open", MOMENTARY_MIN_LOOKBACK),
        Kind(RuleKind.DATA_QUALITY, True, True, None, QUALITY_LOOKBACK),
        Kind(RuleKind.EVENT, False, False, None, None),
    )
}
WINDOWED_KINDS = frozenset(k for k, spec in KINDS.items() if spec.windowed)
MOMENTARY_KINDS = frozenset(k for k, spec in KINDS.items() if spec.momentary)


def is_momentary(kind: RuleKind | str) -> bool:
    """Whether each episode of the kind is judged once (night exit, data quality)."""
    return KINDS[RuleKind(kind)].momentary


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """The distinct values, sorted, in lists of at most `size` (for IN (...) lists)."""
    items = sorted(set(values))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def momentary_since(previous: datetime | None, now: datetime) -> datetime:
    """Where a momentary kind looks back to at `now`: the previous tick, within [15 min, 24 h]."""
    floor = now - MOMENTARY_MAX_CATCHUP
    previous = previous if previous is not None else now - MOMENTARY_MIN_LOOKBACK
    return min(max(previous, floor), now - MOMENTARY_MIN_LOOKBACK)


def params_for(params: Any, overrides: Mapping[int, Any], resident_id: int | None) -> Any:
    """The resident's override when there is one, else the rule's own parameters."""
    if resident_id is None:
        return params
    return overrides.get(resident_id, params)


def threshold_window(params: Any, overrides: Mapping[int, Any]) -> timedelta:
    """How far back a threshold rule reads: its longest duration (overrides too) and a margin.

    Each rule sees only its own window, whatever other rules read the same metric: the episode
    start (the first value after the last cleared one) depends on how far back the data goes.
    """
    longest = max([params.for_minutes] + [p.for_minutes for p in overrides.values()])
    return timedelta(minutes=longest) + THRESHOLD_MARGIN


# --- evaluate: the evaluators' inputs, built once for the live and the replayed view


def activity(
    world: World,
    resident_id: int,
    sources: Sequence[ev.MotionSource],
    first_data: Mapping[str, datetime],
    routine: Mapping[int, float],
    now: datetime,
) -> ev.Activity:
    """A resident's motion for the inactivity evaluator.

    Quiet time counts from the first motion datum in view when every sensor has one, and from a
    silence's end too (a resident back from hospital is not "inactive" for the days away).
    """
    resident = world.residents[resident_id]
    starts = [first_data[s.device_id] for s in sources if s.device_id in first_data]
    data_since = min(starts) if len(starts) == len(sources) else None
    back = world.holds.ended_before(now, site_id=resident.site_id, resident_id=resident_id)
    if back is not None:
        data_since = max(data_since or back, back)
    return ev.Activity(
        resident.timezone,
        resident.active_start,
        resident.active_end,
        list(sources),
        dict(routine),
        data_since=data_since,
    )


def door_watch(
    world: World, key: tuple[str, Any], sources: Sequence[ev.DoorSource]
) -> ev.DoorWatch:
    """A subject's doors for the night-exit evaluator, in the resident's (or site's) zone."""
    if key[0] == "resident":
        resident = world.residents[key[1]]
        return ev.DoorWatch(
            resident.timezone, list(sources), (resident.active_start, resident.active_end)
        )
    device = world.by_id[key[1]]
    return ev.DoorWatch(world.sites.get(device.site_id, "UTC"), list(sources), None)


def doors(
    devices: Iterable[Any], readings: Mapping[str, Any], events: Mapping[str, Any]
) -> list[Any]:
    """The devices night-exit rules watch: door types, and any device that sent door data."""
    return [d for d in devices if d.id in readings or d.id in events or d.type in DOORS]
