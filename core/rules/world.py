"""The registry as rules see it: sites, active residents, devices in service, silences, routines.

One loader for the engine and the backtest. The live view is the registry now with the silences
of the last day (`live_world`); the replay view is the same registry (what it knows only now is
taken as it is now: devices, residents, learned routines) with the silences over the replayed
range (`replay_world`). Quarantined devices and devices out of service are left out: they never
raise alerts; a resident who left is not watched over, nor are their devices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import rollups
from core.contract.catalogue import DEVICE_METRICS
from core.rules import evaluate as ev
from core.rules.kinds import CHUNK, MOMENTARY_MAX_CATCHUP, MOTION_LOOKBACK, chunks
from core.rules.scope import Scoped, covers
from core.silences import Holds, load_holds
from models import (
    Device,
    Reading,
    Resident,
    ResidentRoutine,
    Rollup,
    RollupPeriod,
    ScopeType,
    Site,
    in_service,
)

SubjectKey = tuple[str, object]  # ("resident", id), ("device", id) or ("suite", name)
# Readings later than this after their hour may be missing from the hour's rollup for a while.
ROLLUP_LAG = timedelta(hours=2)
# Metric -> the device types the catalogue says report it. Rules read a metric from any device
# that sends it (ingest accepts every catalogue metric from every device): these types are only
# where it is looked for first, without asking the database whether the device sends it.
TYPES_REPORTING: dict[str, frozenset[str]] = {
    metric: frozenset(t.value for t, metrics in DEVICE_METRICS.items() if metric in metrics)
    for metric in {m for metrics in DEVICE_METRICS.values() for m in metrics}
}


@dataclass(frozen=True, slots=True)
class WorldDevice:
    """A device in service, as the registry holds it now."""

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
class WorldResident:
    """An active resident, with their zone (theirs, else their site's) and active hours."""

    id: int
    site_id: str
    name: str
    timezone: str
    active_start: time
    active_end: time
    created_at: datetime | None = None


@dataclass
class World:
    """Sites (id -> timezone), active residents, devices in service, and the silences in view."""

    sites: dict[str, str]
    residents: dict[int, WorldResident]
    devices: list[WorldDevice]
    holds: Holds = field(default_factory=Holds)
    by_id: dict[str, WorldDevice] = field(default_factory=dict)
    # Rules are scoped by site, resident or type: look candidates up instead of scanning all.
    by_site: dict[str, list[WorldDevice]] = field(default_factory=dict)
    by_resident: dict[int, list[WorldDevice]] = field(default_factory=dict)
    by_type: dict[str | None, list[WorldDevice]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in self.devices:
            self.by_id[d.id] = d
            self.by_site.setdefault(d.site_id, []).append(d)
            if d.resident_id is not None:
                self.by_resident.setdefault(d.resident_id, []).append(d)
            self.by_type.setdefault(d.type, []).append(d)

    def candidates(self, rule: Scoped) -> list[WorldDevice]:
        """The devices a rule may cover (a superset, to be checked with `covers`)."""
        scope = ScopeType(rule.scope_type or ScopeType.SITE)
        if scope is ScopeType.RESIDENT:
            return self.by_resident.get(rule.resident_id, []) if rule.resident_id else []
        if rule.site_id is not None:
            return self.by_site.get(rule.site_id, [])
        if scope is ScopeType.DEVICE_TYPE:
            return self.by_type.get(rule.device_type, [])
        return self.devices

    def in_scope(self, rule: Scoped) -> list[WorldDevice]:
        """Devices the rule covers, of any type; their residents must be active."""
        found = []
        for d in self.candidates(rule):
            if d.resident_id is not None and d.resident_id not in self.residents:
                continue  # a resident who left: their devices are not watched over
            if covers(rule, site_id=d.site_id, resident_id=d.resident_id, device_type=d.type):
                found.append(d)
        return found

    def deviceless_residents(self, rule: Scoped) -> set[int]:
        """Active residents the rule covers who have no device yet (a site or resident rule)."""
        if ScopeType(rule.scope_type or ScopeType.SITE) is ScopeType.DEVICE_TYPE:
            return set()
        return {
            rid
            for rid, r in self.residents.items()
            if rid not in self.by_resident
            and covers(rule, site_id=r.site_id, resident_id=rid, device_type=None)
        }

    def label(self, key: SubjectKey) -> str:
        """A subject's label for a title: the resident's name, else the device id or suite."""
        kind, ident = key
        if kind == "resident" and ident in self.residents:
            return self.residents[ident].name  # type: ignore[index]
        return str(ident)

    def timezone(self, device: WorldDevice) -> str:
        """The zone a device's local times are judged in: its resident's, else its site's."""
        if device.resident_id is not None:
            return self.residents[device.resident_id].timezone
        return self.sites.get(device.site_id, "UTC")

    def hours(self, resident_id: int | None) -> tuple[time, time] | None:
        """A resident's active hours (local start, end); None for no resident."""
        resident = self.residents.get(resident_id) if resident_id is not None else None
        return (resident.active_start, resident.active_end) if resident else None

    def held(self, key: SubjectKey, finding: ev.Finding, now: datetime, momentary: bool) -> bool:
        """Whether a silence covers the finding's subject at `now` (momentary kinds: or at its
        episode, so a door opened while the resident was away is not news after they return)."""
        if not self.holds:
            return False
        kind, ident = key
        if kind == "resident":
            resident = self.residents.get(int(ident))  # type: ignore[call-overload]
            site_id = resident.site_id if resident else None
            resident_id: int | None = int(ident)  # type: ignore[call-overload]
        elif kind == "device" and (device := self.by_id.get(str(ident))) is not None:
            site_id, resident_id = device.site_id, device.resident_id
        else:
            return False  # data quality suites belong to no site, resident or device
        times = [now] + ([finding.since] if momentary and finding.since is not None else [])
        return any(
            self.holds.held(
                at, site_id=site_id, resident_id=resident_id, device_id=finding.device_id
            )
            for at in times
        )


def subject_key(device: WorldDevice) -> SubjectKey:
    """Resident-level rules are about the resident of the device, else about the device."""
    if device.resident_id is not None:
        return ("resident", device.resident_id)
    return ("device", device.id)


def load_world(session: Session, holds_from: datetime, holds_until: datetime) -> World:
    """The registry now, with the silences that overlap [holds_from, holds_until]."""
    sites = dict(session.execute(select(Site.id, Site.timezone)).tuples().all())
    residents = {
        rid: WorldResident(rid, site_id, name, tz or sites.get(site_id, "UTC"), start, end, made)
        for rid, site_id, name, tz, start, end, made in session.execute(
            select(
                Resident.id,
                Resident.site_id,
                Resident.name,
                Resident.timezone,
                Resident.active_start,
                Resident.active_end,
                Resident.created_at,
            ).where(Resident.active.is_(True))
        ).tuples()
    }
    devices = [
        WorldDevice(*row)
        for row in session.execute(
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
            )
            .where(Device.quarantined.is_(False), in_service())
            .order_by(Device.id)
        ).tuples()
    ]
    holds = load_holds(session, holds_from, holds_until)
    return World(sites, residents, devices, holds)


def live_world(session: Session, now: datetime) -> World:
    """What a tick at `now` sees: the registry, and the silences of the last day."""
    return load_world(session, now - max(MOTION_LOOKBACK, MOMENTARY_MAX_CATCHUP), now)


def replay_world(session: Session, start: datetime, end: datetime) -> World:
    """What a replay of (start, end] sees: the registry now, and the silences over the range."""
    return load_world(session, start - MOTION_LOOKBACK, end)


def routines(session: Session, resident_ids: Iterable[int]) -> dict[int, dict[int, float]]:
    """Learned routines: resident -> local hour -> usual quiet minutes."""
    found: dict[int, dict[int, float]] = defaultdict(dict)
    for chunk in chunks(resident_ids, CHUNK):
        for rid, hour, gap in session.execute(
            select(
                ResidentRoutine.resident_id,
                ResidentRoutine.hour,
                ResidentRoutine.usual_gap_minutes,
            ).where(ResidentRoutine.resident_id.in_(chunk))
        ):
            found[rid][hour] = gap
    return found


# --- which devices send a metric (a superset, found cheaply)


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
    for chunk in chunks(device_ids):
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
    expected = TYPES_REPORTING.get(metric, frozenset())
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
    for chunk in chunks(others - found):
        found |= set(session.scalars(select(d.id).where(d.id.in_(chunk), sends)))
    return found
