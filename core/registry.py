"""The registry of sites, residents and devices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.contract.catalogue import DeviceType, is_registry_id
from core.errors import ConflictError, IotCareError, NotFoundError
from models import BlockedDevice, Device, Resident, Site, User


def _check_id(kind: str, value: str) -> None:
    if not is_registry_id(value):
        raise IotCareError(
            f"The {kind} id '{value}' is not valid: use 1-64 letters, digits, '_' or '-' "
            "(it becomes part of MQTT topics)."
        )


def _check_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise IotCareError(
            f"Unknown timezone '{value}': use an IANA name such as Asia/Seoul."
        ) from None


def create_site(
    session: Session, site_id: str, name: str, timezone: str, address: str | None = None
) -> Site:
    """Register a site after validating its id and timezone."""
    _check_id("site", site_id)
    _check_timezone(timezone)
    if session.get(Site, site_id) is not None:
        raise ConflictError(f"A site with id '{site_id}' exists already.")
    site = Site(id=site_id, name=name, timezone=timezone, address=address)
    session.add(site)
    session.flush()
    return site


def get_site(session: Session, site_id: str) -> Site:
    """The site with this id, or NotFoundError."""
    site = session.get(Site, site_id)
    if site is None:
        raise NotFoundError(f"No site with id '{site_id}'.")
    return site


def create_resident(
    session: Session,
    site: Site,
    name: str,
    *,
    room: str | None = None,
    active_hours: tuple[time, time] = (time(7, 0), time(22, 0)),
    timezone: str | None = None,
    birth_year: int | None = None,
    care_notes: str | None = None,
) -> Resident:
    """Add a resident to a site."""
    if timezone:
        _check_timezone(timezone)
    resident = Resident(
        site_id=site.id,
        name=name,
        room=room,
        timezone=timezone,
        active_start=active_hours[0],
        active_end=active_hours[1],
        birth_year=birth_year,
        care_notes=care_notes,
    )
    session.add(resident)
    session.flush()
    return resident


def check_device_id_free(session: Session, device_id: str) -> None:
    """Refuse an id a device has, or had: a decommissioned id keeps the old device's history."""
    existing = session.get(Device, device_id)
    if existing is not None and existing.decommissioned_at is not None:
        raise ConflictError(
            f"Device '{device_id}' was decommissioned; its id cannot be used again.",
            key="errors.care.device_decommissioned",
            device=device_id,
        )
    if existing is not None:
        raise ConflictError(
            f"A device with id '{device_id}' exists already.",
            key="errors.care.device_taken",
            device=device_id,
        )


def add_device(
    session: Session,
    *,
    device_id: str,
    site_id: str,
    device_type: str,
    resident_id: int | None = None,
    name: str | None = None,
    room: str | None = None,
    actor: User | None = None,
) -> Device:
    """Register a device, checking its id, type, site and resident; lifts a block on its id."""
    _check_id("device", device_id)
    try:
        kind = DeviceType(device_type)
    except ValueError:
        raise IotCareError(
            f"Unknown device type '{device_type}': use one of "
            f"{', '.join(t.value for t in DeviceType)}."
        ) from None
    get_site(session, site_id)
    if resident_id is not None:
        resident = session.get(Resident, resident_id)
        if resident is None or resident.site_id != site_id:
            raise NotFoundError(f"No resident {resident_id} at site '{site_id}'.")
    check_device_id_free(session, device_id)
    device = Device(
        id=device_id,
        site_id=site_id,
        resident_id=resident_id,
        type=kind.value,
        name=name,
        room=room,
        quarantined=False,
    )
    session.add(device)
    # Registering a device is the operator saying it belongs: a block on its id would otherwise
    # keep dead-lettering everything it sends.
    unblocked = unblock_device(session, device_id, actor)
    session.flush()
    audit.record(
        session, actor, "device.add", "device", device_id, type=kind.value, unblocked=unblocked
    )
    return device


def blocked_devices(session: Session) -> Sequence[BlockedDevice]:
    """Blocked device ids (rejected by an operator), newest first."""
    return session.scalars(
        select(BlockedDevice).order_by(BlockedDevice.blocked_at.desc(), BlockedDevice.device_id)
    ).all()


def unblock_device(session: Session, device_id: str, actor: User | None = None) -> bool:
    """Lift the block on a device id (audited); False when it was not blocked.

    Ingest notices at its next registry refresh (at most a minute); the device's next message then
    puts it in quarantine, unless it was registered meanwhile.
    """
    blocked = session.get(BlockedDevice, device_id)
    if blocked is None:
        return False
    device = session.get(Device, device_id)
    if device is not None and device.decommissioned_at is not None:
        # The block is what keeps a decommissioned device's messages out of data and alerts.
        raise ConflictError(
            f"Device '{device_id}' was decommissioned: its id stays blocked.",
            key="errors.care.decommissioned_blocked",
            device=device_id,
        )
    site_id = blocked.site_id
    session.delete(blocked)
    session.flush()
    audit.record(session, actor, "device.unblock", "device", device_id, site_id=site_id)
    return True


def list_devices(
    session: Session,
    *,
    site_id: str | None = None,
    quarantined: bool | None = None,
) -> Sequence[Device]:
    """Devices ordered by site and id, optionally of one site or only (non-)quarantined ones."""
    query = select(Device).order_by(Device.site_id, Device.id)
    if site_id is not None:
        query = query.where(Device.site_id == site_id)
    if quarantined is not None:
        query = query.where(Device.quarantined == quarantined)
    return session.scalars(query).all()
