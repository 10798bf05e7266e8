"""The device fleet for operators: the registry table, one device's detail and recent messages,
and the quarantine decisions (accept or reject a device ingest registered on its own).

Rejecting removes the device from the registry only: readings, events and dead letters have no
foreign key to devices and are kept, so nothing it said is lost. If it keeps publishing, ingest
quarantines it again and it reappears here (a broker ACL generated from the registry no longer
admits it, since its credentials go with the row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core import audit, registry
from core.access import Permission, Viewer, acting_user, require
from core.contract.catalogue import DeviceType, is_registry_id
from core.device_state import ShownStatus, shown_status, silent_clause
from core.errors import ConflictError, IotCareError, NotFoundError
from core.timeutil import utcnow
from models import (
    AuditEntry,
    BlockedDevice,
    Command,
    DeadLetter,
    Device,
    DeviceStatus,
    DeviceStatusChange,
    Event,
    Reading,
    Resident,
    Site,
    User,
    in_service,
)

LOW_BATTERY = 20
FLEET_COLUMNS = [
    "device_id",
    "name",
    "type",
    "site_id",
    "room",
    "resident_id",
    "resident",
    "status",
    "last_seen",
    "battery",
    "rssi",
    "firmware",
    "quarantined",
    "decommissioned_at",
]
MESSAGE_COLUMNS = ["at", "kind", "what", "detail"]
BLOCKED_COLUMNS = ["device_id", "site_id", "blocked_at", "blocked_by", "reason"]


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet table is narrowed to; None means any."""

    site_id: str | None = None
    # As shown: ONLINE and UNKNOWN leave out silent devices, SILENT picks them.
    status: ShownStatus | DeviceStatus | None = None
    device_type: str | None = None
    quarantined: bool | None = None
    search: str | None = None
    # Decommissioned devices stay in the registry but leave the table unless asked for.
    decommissioned: bool = False


@dataclass(frozen=True)
class FleetSummary:
    """Counts over the whole fleet (not the filtered table)."""

    total: int
    online: int  # reported online and talking as often as their type should
    offline: int
    quarantined: int
    low_battery: int
    silent: int = 0  # not reported offline, but quiet past their type's reporting interval


@dataclass(frozen=True)
class DeviceDetail:
    """One device with what the detail view shows about it."""

    device_id: str
    site_id: str
    site_timezone: str
    type: str | None
    name: str | None
    room: str | None
    resident_id: int | None
    resident: str | None
    status: DeviceStatus
    last_seen: datetime | None
    battery: int | None
    rssi: int | None
    firmware: str | None
    quarantined: bool
    created_at: datetime
    shown_status: ShownStatus = ShownStatus.UNKNOWN  # the status, or SILENT when it went quiet
    status_since: datetime | None = None  # when the reported status began, if known
    decommissioned_at: datetime | None = None  # when it left service; None while in service


@dataclass(frozen=True)
class RejectResult:
    """What rejecting a device removed and what it kept."""

    device_id: str
    readings_kept: int
    events_kept: int
    blocked: bool = False


def _fleet_query(flt: FleetFilter, now: datetime) -> Select[Any]:
    query = (
        select(
            Device.id.label("device_id"),
            Device.name,
            Device.type,
            Device.site_id,
            Device.room,
            Device.resident_id,
            Resident.name.label("resident"),
            Device.status,
            Device.last_seen,
            Device.battery,
            Device.rssi,
            Device.firmware,
            Device.quarantined,
            Device.decommissioned_at,
        )
        .outerjoin(Resident, Resident.id == Device.resident_id)
        .order_by(Device.quarantined.desc(), Device.site_id, Device.id)
    )
    if not flt.decommissioned:
        query = query.where(in_service())
    if flt.site_id:
        query = query.where(Device.site_id == flt.site_id)
    if flt.status is not None:
        wanted = ShownStatus(str(flt.status))
        if wanted is ShownStatus.SILENT:
            query = query.where(silent_clause(now))
        else:
            query = query.where(Device.status == DeviceStatus(wanted.value))
            if wanted is not ShownStatus.OFFLINE:
                query = query.where(~silent_clause(now))
    if flt.device_type:
        query = query.where(Device.type == flt.device_type)
    if flt.quarantined is not None:
        query = query.where(Device.quarantined.is_(flt.quarantined))
    if flt.search:
        needle = flt.search.strip().lower()
        query = query.where(
            func.lower(Device.id).contains(needle, autoescape=True)
            | func.lower(func.coalesce(Device.name, "")).contains(needle, autoescape=True)
            | func.lower(func.coalesce(Device.room, "")).contains(needle, autoescape=True)
            | func.lower(func.coalesce(Resident.name, "")).contains(needle, autoescape=True)
        )
    return query


def fleet(
    session: Session,
    viewer: Viewer,
    flt: FleetFilter | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The device registry as a table, quarantined devices first, then by site and id.

    `status` is the status as shown (ShownStatus): "silent" for a device not reported offline
    that has been quiet past its type's reporting interval.
    """
    require(viewer, Permission.MANAGE_DEVICES)
    now = now or utcnow()
    rows = session.execute(_fleet_query(flt or FleetFilter(), now)).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=FLEET_COLUMNS)
    frame["status"] = [shown_status(row.status, row.last_seen, row.type, now).value for row in rows]
    for column in ("battery", "rssi", "resident_id"):
        frame[column] = frame[column].astype("Int64")
    return frame


def fleet_page(
    session: Session,
    viewer: Viewer,
    flt: FleetFilter | None = None,
    *,
    after: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` devices of the filtered fleet by id, after the id `after`; and the last id
    when more follow (a keyset page for integrations; the table's own order is for people)."""
    require(viewer, Permission.MANAGE_DEVICES)
    now = now or utcnow()
    query = _fleet_query(flt or FleetFilter(), now).order_by(None).order_by(Device.id)
    if after is not None:
        query = query.where(Device.id > after)
    rows = session.execute(query.limit(limit + 1)).all()
    items = [
        {
            **row._asdict(),
            "status": shown_status(row.status, row.last_seen, row.type, now).value,
        }
        for row in rows[:limit]
    ]
    return items, (items[-1]["device_id"] if len(rows) > limit else None)


def fleet_summary(
    session: Session, viewer: Viewer, site_id: str | None = None, now: datetime | None = None
) -> FleetSummary:
    """How many devices there are, online, silent, offline, quarantined and low on battery."""
    require(viewer, Permission.MANAGE_DEVICES)
    scope = [in_service(), *([Device.site_id == site_id] if site_id else [])]
    silent = silent_clause(now or utcnow())

    def count(*where: object) -> int:
        return int(session.scalar(select(func.count()).select_from(Device).where(*scope, *where)))

    return FleetSummary(
        total=count(),
        online=count(Device.status == DeviceStatus.ONLINE, ~silent),
        offline=count(Device.status == DeviceStatus.OFFLINE),
        quarantined=count(Device.quarantined.is_(True)),
        low_battery=count(Device.battery < LOW_BATTERY),
        silent=count(silent),
    )


def sites(session: Session, viewer: Viewer) -> dict[str, tuple[str, str]]:
    """Site id -> (name, timezone), for the site filter and local times."""
    require(viewer, Permission.MANAGE_DEVICES)
    rows = session.execute(select(Site.id, Site.name, Site.timezone).order_by(Site.name))
    return {site_id: (name, timezone) for site_id, name, timezone in rows}


def site_residents(session: Session, viewer: Viewer, site_id: str) -> dict[int, str]:
    """Active residents of a site, id -> 'name (room)', for assigning a device."""
    require(viewer, Permission.MANAGE_DEVICES)
    rows = session.execute(
        select(Resident.id, Resident.name, Resident.room)
        .where(Resident.site_id == site_id, Resident.active.is_(True))
        .order_by(Resident.name)
    ).all()
    return {rid: f"{name} ({room})" if room else name for rid, name, room in rows}


def _get(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFoundError(
            f"No device '{device_id}'.", key="errors.devices.missing", device=device_id
        )
    return device


def device_detail(
    session: Session, viewer: Viewer, device_id: str, now: datetime | None = None
) -> DeviceDetail:
    """One device, its site's timezone and its resident's name."""
    require(viewer, Permission.MANAGE_DEVICES)
    device = _get(session, device_id)
    site = session.get(Site, device.site_id)
    resident = session.get(Resident, device.resident_id) if device.resident_id else None
    return DeviceDetail(
        device_id=device.id,
        site_id=device.site_id,
        site_timezone=site.timezone if site else "UTC",
        type=device.type,
        name=device.name,
        room=device.room,
        resident_id=device.resident_id,
        resident=resident.name if resident else None,
        status=DeviceStatus(device.status),
        last_seen=device.last_seen,
        battery=device.battery,
        rssi=device.rssi,
        firmware=device.firmware,
        quarantined=device.quarantined,
        created_at=device.created_at,
        shown_status=shown_status(device.status, device.last_seen, device.type, now or utcnow()),
        status_since=device.status_since,
        decommissioned_at=device.decommissioned_at,
    )


def recent_messages(
    session: Session,
    viewer: Viewer,
    device_id: str,
    *,
    hours: int = 24,
    limit: int = 100,
    now: datetime | None = None,
) -> pd.DataFrame:
    """What a device said and what happened to it lately, newest first.

    Kinds: reading (metric, value), event (type), status (a change of its status: online or
    offline, with its reason), dead_letter (reason, detail), command (name, status) and change
    (audited registry changes such as accept). Status heartbeats that repeat the status are not
    kept; the current state is in `device_detail`.
    """
    require(viewer, Permission.MANAGE_DEVICES)
    since = (now or utcnow()) - timedelta(hours=hours)
    rows: list[tuple[datetime, str, str, str]] = []
    for ts, metric, value in session.execute(
        select(Reading.ts, Reading.metric, Reading.value)
        .where(Reading.device_id == device_id, Reading.ts >= since)
        .order_by(Reading.ts.desc())
        .limit(limit)
    ):
        rows.append((ts, "reading", metric, f"{value:g}"))
    for ts, kind, data in session.execute(
        select(Event.ts, Event.type, Event.data)
        .where(Event.device_id == device_id, Event.ts >= since)
        .order_by(Event.ts.desc())
        .limit(limit)
    ):
        rows.append((ts, "event", kind, ", ".join(f"{k}={v}" for k, v in (data or {}).items())))
    for at, status, reason in session.execute(
        select(DeviceStatusChange.at, DeviceStatusChange.status, DeviceStatusChange.reason)
        .where(DeviceStatusChange.device_id == device_id, DeviceStatusChange.at >= since)
        .order_by(DeviceStatusChange.at.desc())
        .limit(limit)
    ):
        rows.append((at, "status", str(status), str(reason)))
    for at, reason, detail in session.execute(
        select(DeadLetter.received_at, DeadLetter.reason, DeadLetter.detail)
        .where(
            DeadLetter.topic.contains(f"/{device_id}/", autoescape=True),
            DeadLetter.received_at >= since,
        )
        .order_by(DeadLetter.received_at.desc())
        .limit(limit)
    ):
        rows.append((at, "dead_letter", reason, detail or ""))
    for at, name, status, detail in session.execute(
        select(Command.created_at, Command.command, Command.status, Command.ack_detail)
        .where(Command.device_id == device_id, Command.created_at >= since)
        .order_by(Command.created_at.desc())
        .limit(limit)
    ):
        rows.append((at, "command", name, f"{status}" + (f": {detail}" if detail else "")))
    for at, action, actor in session.execute(
        select(AuditEntry.at, AuditEntry.action, AuditEntry.actor_name)
        .where(
            AuditEntry.target_type == "device",
            AuditEntry.target_id == device_id,
            AuditEntry.action.not_like("command.%"),
            AuditEntry.at >= since,
        )
        .order_by(AuditEntry.at.desc())
        .limit(limit)
    ):
        rows.append((at, "change", action, actor))
    rows.sort(key=lambda row: row[0], reverse=True)
    return pd.DataFrame(rows[:limit], columns=MESSAGE_COLUMNS)


def accept_device(
    session: Session,
    viewer: Viewer,
    device_id: str,
    *,
    device_type: str,
    resident_id: int | None = None,
    room: str | None = None,
    name: str | None = None,
) -> Device:
    """Take a quarantined device into the fleet with its type, resident, room, name; audited."""
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    device = _get(session, device_id)
    if not device.quarantined:
        raise ConflictError(
            f"Device '{device_id}' is not quarantined.",
            key="errors.devices.not_quarantined",
            device=device_id,
        )
    try:
        kind = DeviceType(device_type)
    except ValueError:
        raise IotCareError(
            f"Unknown device type '{device_type}'.", key="errors.devices.type_unknown"
        ) from None
    if resident_id is not None:
        resident = session.get(Resident, resident_id)
        if resident is None or resident.site_id != device.site_id:
            raise NotFoundError(
                f"No resident {resident_id} at site '{device.site_id}'.",
                key="errors.devices.resident_elsewhere",
            )
    device.type = kind.value
    device.resident_id = resident_id
    device.room = (room or "").strip() or None
    device.name = (name or "").strip() or None
    device.quarantined = False
    session.flush()
    audit.record(
        session,
        actor,
        "device.accept",
        "device",
        device_id,
        type=kind.value,
        resident_id=resident_id,
        room=device.room,
        name=device.name,
    )
    return device


def reject_device(
    session: Session,
    viewer: Viewer,
    device_id: str,
    *,
    reason: str | None = None,
    block: bool = True,
) -> RejectResult:
    """Remove a quarantined device from the registry, keeping everything it sent; audited.

    With `block` (the default) its id is blocked too: ingest keeps its later messages as
    dead letters instead of storing them and bringing the device back to quarantine.
    """
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    if not is_registry_id(device_id):
        raise NotFoundError(
            f"No device '{device_id}'.", key="errors.devices.missing", device=device_id
        )
    device = _get(session, device_id)
    if not device.quarantined:
        # An accepted device carries residents' care; taking it out is not a quarantine decision.
        raise ConflictError(
            f"Device '{device_id}' is not quarantined.",
            key="errors.devices.not_quarantined",
            device=device_id,
        )
    readings = int(session.scalar(select(func.count()).where(Reading.device_id == device_id)) or 0)
    events = int(session.scalar(select(func.count()).where(Event.device_id == device_id)) or 0)
    site_id = device.site_id
    reason = (reason or "").strip()[:500] or None
    session.delete(device)
    if block:
        session.merge(
            BlockedDevice(
                device_id=device_id,
                site_id=site_id,
                reason=reason,
                blocked_by=actor.id,
                blocked_at=utcnow(),
            )
        )
    session.flush()
    audit.record(
        session,
        actor,
        "device.reject",
        "device",
        device_id,
        site_id=site_id,
        reason=reason,
        readings_kept=readings,
        events_kept=events,
        blocked=block,
    )
    return RejectResult(device_id, readings, events, block)


def blocked_devices(session: Session, viewer: Viewer) -> pd.DataFrame:
    """Device ids operators rejected and blocked, newest first, with who did it and why."""
    require(viewer, Permission.MANAGE_DEVICES)
    rows = session.execute(
        select(
            BlockedDevice.device_id,
            BlockedDevice.site_id,
            BlockedDevice.blocked_at,
            User.display_name.label("blocked_by"),
            BlockedDevice.reason,
        )
        .outerjoin(User, User.id == BlockedDevice.blocked_by)
        .order_by(BlockedDevice.blocked_at.desc(), BlockedDevice.device_id)
    ).all()
    return pd.DataFrame(rows, columns=BLOCKED_COLUMNS)


def unblock_device(session: Session, viewer: Viewer, device_id: str) -> None:
    """Lift a block: the device's next message puts it in quarantine again; audited."""
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    if not (is_registry_id(device_id) and registry.unblock_device(session, device_id, actor)):
        raise NotFoundError(
            f"Device '{device_id}' is not blocked.",
            key="errors.devices.not_blocked",
            device=device_id,
        )
