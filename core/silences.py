"""Silences: hold windowed alerts while a resident is away or a site or device is maintained.

A silence covers a resident (and their devices), a site (everything there) or one device, from
its start to its end or its cancellation. While it lasts the windowed rule engine holds the
alerts it would raise about the covered subjects (threshold, inactivity, night exit, device
offline, battery). Critical instant events (fall, panic, flame, smoke, gas; ingest) are never
held: nobody wants a fall in hospital unreported. An alert open when a silence starts is left as
it is: it was raised before anyone said the resident was away, and it still resolves itself.
Every creation and cancellation is audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core import audit
from core.access import (
    Permission,
    Viewer,
    acting_user,
    check_resident,
    require,
    visible_resident_ids,
    visible_site_ids,
)
from core.errors import ConflictError, IotCareError, NotFoundError
from core.timeutil import ensure_utc, utcnow
from models import (
    Device,
    Resident,
    Silence,
    SilenceReason,
    SilenceScope,
    Site,
    User,
    in_service,
)

# A start this far in the past is still "now" (the form was open for a while).
START_GRACE = timedelta(minutes=15)
# A silence must end: the longest one, so a forgotten "away" cannot hide a resident for good.
MAX_DURATION = timedelta(days=90)
NOTE_LENGTH = 500


class SilenceError(IotCareError):
    """A silence that cannot be created as asked; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a silence covers, with the site it belongs to (for times in the site's zone)."""

    scope: SilenceScope
    ident: str
    site_id: str
    label: str


def resolve_target(session: Session, scope: SilenceScope | str, ident: str | int) -> Target:
    """The resident, site or device a silence is about; NotFoundError when it does not exist."""
    scope = SilenceScope(scope)
    found: Target | None = None
    if scope is SilenceScope.RESIDENT:
        try:
            resident = session.get(Resident, int(ident))
        except ValueError:
            resident = None
        if resident is not None:
            found = Target(scope, str(resident.id), resident.site_id, resident.name)
    elif scope is SilenceScope.SITE:
        site = session.get(Site, str(ident))
        if site is not None:
            found = Target(scope, site.id, site.id, site.name)
    else:
        device = session.get(Device, str(ident))
        if device is not None:
            found = Target(scope, device.id, device.site_id, device.name or device.id)
    if found is None:
        raise NotFoundError(
            f"There is no {scope.value} '{ident}' to silence.",
            key=f"errors.silence.missing_{scope.value}",
            ident=ident,
        )
    return found


def create_silence(
    session: Session,
    actor: User | None,
    *,
    scope: SilenceScope | str,
    target: str | int,
    ends_at: datetime,
    reason: SilenceReason | str,
    starts_at: datetime | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Silence:
    """Record a silence (audited); SilenceError says what is wrong with the dates or note."""
    now = ensure_utc(now or utcnow())
    found = resolve_target(session, scope, target)
    try:
        reason = SilenceReason(reason)
    except ValueError:
        raise SilenceError(
            f"Unknown reason '{reason}': use one of {', '.join(r.value for r in SilenceReason)}.",
            key="errors.silence.reason",
        ) from None
    start = ensure_utc(starts_at) if starts_at is not None else now
    end = ensure_utc(ends_at)
    if start < now - START_GRACE or end <= now:
        raise SilenceError(
            "A silence cannot start or end in the past.", key="errors.silence.in_past"
        )
    if end <= start:
        raise SilenceError("The end must be after the start.", key="errors.silence.end_first")
    if end - start > MAX_DURATION:
        days = MAX_DURATION.days
        raise SilenceError(
            f"A silence can last at most {days} days.", key="errors.silence.too_long", days=days
        )
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_LENGTH:
        raise SilenceError(
            f"The note can have at most {NOTE_LENGTH} characters.",
            key="errors.silence.note_long",
            n=NOTE_LENGTH,
        )
    silence = Silence(
        scope=found.scope,
        resident_id=int(found.ident) if found.scope is SilenceScope.RESIDENT else None,
        site_id=found.ident if found.scope is SilenceScope.SITE else None,
        device_id=found.ident if found.scope is SilenceScope.DEVICE else None,
        starts_at=start,
        ends_at=end,
        reason=reason,
        note=note,
        created_by=actor.id if actor else None,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    audit.record(
        session,
        actor,
        "silence.create",
        "silence",
        silence.id,
        scope=found.scope.value,
        target=found.ident,
        site_id=found.site_id,
        starts_at=start.isoformat(),
        ends_at=end.isoformat(),
        reason=reason.value,
        note=note,
    )
    return silence


def cancel_silence(
    session: Session, actor: User | None, silence_id: int, *, now: datetime | None = None
) -> Silence:
    """End a silence now (or withdraw one not begun yet); audited. ConflictError if it is over."""
    now = ensure_utc(now or utcnow())
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFoundError(
            f"There is no silence {silence_id}.", key="errors.silence.missing", ident=silence_id
        )
    if silence.effective_end <= now:
        raise ConflictError(
            f"Silence {silence_id} is over already.", key="errors.silence.over", ident=silence_id
        )
    silence.cancelled_at = now
    silence.cancelled_by = actor.id if actor else None
    session.flush()
    audit.record(
        session,
        actor,
        "silence.cancel",
        "silence",
        silence.id,
        scope=SilenceScope(silence.scope).value,
        target=target_id(silence),
        began=silence.starts_at <= now,
    )
    return silence


def target_id(silence: Silence) -> str:
    """The id of what the silence covers, as text."""
    value = {
        SilenceScope.RESIDENT: silence.resident_id,
        SilenceScope.SITE: silence.site_id,
        SilenceScope.DEVICE: silence.device_id,
    }[SilenceScope(silence.scope)]
    return str(value)


def current_and_upcoming(
    session: Session,
    at: datetime | None = None,
    *,
    resident_ids: Iterable[int] | None = None,
    site_ids: Iterable[str] | None = None,
    device_ids: Iterable[str] | None = None,
) -> list[Silence]:
    """Silences not over at `at` (active or still to come), soonest first; optionally only those
    about the given residents, sites or devices (any of them)."""
    at = ensure_utc(at or utcnow())
    query = select(Silence).where(
        Silence.ends_at > at,
        or_(Silence.cancelled_at.is_(None), Silence.cancelled_at > at),
    )
    wanted = []
    if resident_ids is not None:
        wanted.append(Silence.resident_id.in_(list(resident_ids)))
    if site_ids is not None:
        wanted.append(Silence.site_id.in_(list(site_ids)))
    if device_ids is not None:
        wanted.append(Silence.device_id.in_(list(device_ids)))
    if wanted:
        query = query.where(or_(*wanted))
    return list(session.scalars(query.order_by(Silence.starts_at, Silence.id)))


# --- holds, for the rule engine and the backtest

Window = tuple[datetime, datetime]


@dataclass
class Holds:
    """Silence windows by what they cover, to ask "is this subject silenced at t?" in memory."""

    residents: dict[int, list[Window]] = field(default_factory=lambda: defaultdict(list))
    sites: dict[str, list[Window]] = field(default_factory=lambda: defaultdict(list))
    devices: dict[str, list[Window]] = field(default_factory=lambda: defaultdict(list))

    def __bool__(self) -> bool:
        return bool(self.residents or self.sites or self.devices)

    def add(self, silence: Silence) -> None:
        """Take a silence's window [start, effective end)."""
        window = (silence.starts_at, silence.effective_end)
        if window[1] <= window[0]:
            return  # withdrawn before it began
        if silence.resident_id is not None:
            self.residents[silence.resident_id].append(window)
        elif silence.site_id is not None:
            self.sites[silence.site_id].append(window)
        elif silence.device_id is not None:
            self.devices[silence.device_id].append(window)

    def _windows(
        self, site_id: str | None, resident_id: int | None, device_id: str | None
    ) -> list[Window]:
        found: list[Window] = []
        if site_id is not None:
            found += self.sites.get(site_id, [])
        if resident_id is not None:
            found += self.residents.get(resident_id, [])
        if device_id is not None:
            found += self.devices.get(device_id, [])
        return found

    def held(
        self,
        at: datetime,
        *,
        site_id: str | None = None,
        resident_id: int | None = None,
        device_id: str | None = None,
    ) -> bool:
        """Whether a silence of the site, the resident or the device covers `at`."""
        return any(
            start <= at < end for start, end in self._windows(site_id, resident_id, device_id)
        )

    def ended_before(
        self, at: datetime, *, site_id: str | None = None, resident_id: int | None = None
    ) -> datetime | None:
        """The latest end, at or before `at`, of a silence of the resident or their site.

        Inactivity counts quiet time from there: the absence during the silence is not news.
        """
        ends = [end for start, end in self._windows(site_id, resident_id, None) if end <= at]
        return max(ends, default=None)


def load_holds(session: Session, start: datetime, end: datetime) -> Holds:
    """The silence windows that overlap [start, end] (one query; the table is small)."""
    holds = Holds()
    for silence in session.scalars(
        select(Silence).where(
            Silence.starts_at <= end,
            Silence.ends_at > start,
            or_(Silence.cancelled_at.is_(None), Silence.cancelled_at > start),
        )
    ):
        holds.add(silence)
    return holds


def is_silenced(
    session: Session,
    at: datetime,
    *,
    site_id: str | None = None,
    resident_id: int | None = None,
    device_id: str | None = None,
) -> bool:
    """Whether a silence covers this subject at `at` (site, resident or device, any of them).

    A device's resident and site are looked up when only the device is given, and a resident's
    site likewise, so a caller may name the subject by its most specific id.
    """
    at = ensure_utc(at)
    if device_id is not None and (site_id is None or resident_id is None):
        device = session.get(Device, device_id)
        if device is not None:
            site_id = site_id or device.site_id
            resident_id = resident_id if resident_id is not None else device.resident_id
    if resident_id is not None and site_id is None:
        resident = session.get(Resident, resident_id)
        site_id = resident.site_id if resident is not None else None
    holds = load_holds(session, at, at)
    return holds.held(at, site_id=site_id, resident_id=resident_id, device_id=device_id)


# --- what a signed-in person may see and do (the app's pages call these)


def _check_scope(session: Session, viewer: Viewer, scope: SilenceScope, ident: str) -> None:
    """Caregivers may silence their own residents; sites and devices need MANAGE_DEVICES."""
    if scope is SilenceScope.RESIDENT:
        require(viewer, Permission.HANDLE_ALERTS)
        check_resident(session, viewer, int(ident))
    else:
        require(viewer, Permission.MANAGE_DEVICES)


def create_as(
    session: Session,
    viewer: Viewer,
    *,
    scope: SilenceScope | str,
    target: str | int,
    ends_at: datetime,
    reason: SilenceReason | str,
    starts_at: datetime | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Silence:
    """create_silence for a signed-in person, if they may silence this (AccessDenied if not)."""
    scope = SilenceScope(scope)
    _check_scope(session, viewer, scope, str(target))
    return create_silence(
        session,
        acting_user(session, viewer),
        scope=scope,
        target=target,
        ends_at=ends_at,
        reason=reason,
        starts_at=starts_at,
        note=note,
        now=now,
    )


def cancel_as(
    session: Session, viewer: Viewer, silence_id: int, *, now: datetime | None = None
) -> Silence:
    """cancel_silence for a signed-in person, if they may silence its subject."""
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFoundError(
            f"There is no silence {silence_id}.", key="errors.silence.missing", ident=silence_id
        )
    _check_scope(session, viewer, SilenceScope(silence.scope), target_id(silence))
    return cancel_silence(session, acting_user(session, viewer), silence_id, now=now)


@dataclass(frozen=True, slots=True)
class SilenceView:
    """A silence as pages show it: what it covers, why, until when, in the site's timezone."""

    id: int
    scope: SilenceScope
    target: str
    label: str
    site_id: str
    timezone: str
    reason: SilenceReason
    note: str | None
    starts_at: datetime
    ends_at: datetime
    active: bool
    created_by: str | None


def visible_silences(
    session: Session,
    viewer: Viewer,
    at: datetime | None = None,
    *,
    resident_id: int | None = None,
) -> list[SilenceView]:
    """Active and upcoming silences the viewer may see (of one resident and their site, if given).

    Caregivers see those of their residents and of the sites they work at; others see all.
    """
    at = ensure_utc(at or utcnow())
    require(viewer, Permission.VIEW_RESIDENTS)
    if resident_id is not None:
        resident = check_resident(session, viewer, resident_id)
        rows = current_and_upcoming(
            session, at, resident_ids=[resident_id], site_ids=[resident.site_id]
        )
    else:
        rows = current_and_upcoming(session, at)
    sites = {s.id: s for s in session.scalars(select(Site))}
    if not viewer.sees_all_residents:
        residents = set(visible_resident_ids(session, viewer))
        site_ids = set(visible_site_ids(session, viewer))
        rows = [
            s
            for s in rows
            if (s.resident_id is not None and s.resident_id in residents)
            or (s.site_id is not None and s.site_id in site_ids)
        ]
    names = {
        u.id: u.display_name or u.username
        for u in session.scalars(select(User).where(User.id.in_({s.created_by for s in rows})))
    }
    found: list[SilenceView] = []
    for s in rows:
        try:
            target = resolve_target(session, s.scope, target_id(s))
        except NotFoundError:
            continue
        site = sites.get(target.site_id)
        found.append(
            SilenceView(
                id=s.id,
                scope=SilenceScope(s.scope),
                target=target.ident,
                label=target.label,
                site_id=target.site_id,
                timezone=site.timezone if site else "UTC",
                reason=SilenceReason(s.reason),
                note=s.note,
                starts_at=s.starts_at,
                ends_at=s.effective_end,
                active=s.starts_at <= at,
                created_by=names.get(s.created_by) if s.created_by else None,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class SilencedResident:
    """A resident whose alerts are held now, and until when (the later of their silences)."""

    resident_id: int
    name: str
    timezone: str
    reason: SilenceReason
    until: datetime
    by_site: bool


def silenced_residents(
    session: Session, viewer: Viewer, at: datetime | None = None
) -> list[SilencedResident]:
    """The viewer's residents silenced at `at` (their own silence or their site's), by name."""
    at = ensure_utc(at or utcnow())
    visible = visible_resident_ids(session, viewer)
    active = [s for s in current_and_upcoming(session, at) if s.starts_at <= at]
    if not active or not visible:
        return []
    own: dict[int, Silence] = {}
    by_site: dict[str, Silence] = {}
    for s in sorted(active, key=lambda s: s.effective_end):  # the latest end wins
        if s.resident_id is not None:
            own[s.resident_id] = s
        elif s.site_id is not None:
            by_site[s.site_id] = s
    sites = dict(session.execute(select(Site.id, Site.timezone)).tuples().all())
    found: list[SilencedResident] = []
    for resident in session.scalars(
        select(Resident).where(Resident.id.in_(visible)).order_by(Resident.name)
    ):
        mine, site = own.get(resident.id), by_site.get(resident.site_id)
        chosen = max(
            (s for s in (mine, site) if s is not None),
            key=lambda s: s.effective_end,
            default=None,
        )
        if chosen is None:
            continue
        found.append(
            SilencedResident(
                resident.id,
                resident.name,
                resident.timezone or sites.get(resident.site_id, "UTC"),
                SilenceReason(chosen.reason),
                chosen.effective_end,
                chosen.resident_id is None,
            )
        )
    return found


def maintenance_targets(
    session: Session, viewer: Viewer
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """What an operator may put under maintenance: sites (id -> name), devices (id, site id)."""
    require(viewer, Permission.MANAGE_DEVICES)
    sites = dict(session.execute(select(Site.id, Site.name).order_by(Site.name)).tuples().all())
    devices = list(
        session.execute(
            select(Device.id, Device.site_id)
            .where(Device.quarantined.is_(False), in_service())
            .order_by(Device.site_id, Device.id)
        ).tuples()
    )
    return sites, devices
