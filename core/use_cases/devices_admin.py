"""Device administration for operators: add, edit, reassign, replace and decommission.

Decommissioning marks the device (`decommissioned_at`) and blocks its id, as rejecting a
quarantined one does, but never deletes it: its status history and commands stay, its past
readings keep their device, and every "live" query (rules, overview, fleet list, valves, broker
credentials) leaves it out through `models.in_service`. Ingest dead-letters whatever the id still
sends, so it neither alerts nor comes back to quarantine. A decommissioned id cannot be added
again: its history belongs to the old device.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core import audit, device_credentials, registry
from core.access import Permission, Viewer, acting_user, require
from core.contract.catalogue import DeviceType
from core.errors import ConflictError, NotFoundError
from core.timeutil import utcnow
from core.use_cases import care_fields as check
from core.use_cases.sites_admin import get_site
from models import BlockedDevice, Device, Resident


@dataclass(frozen=True)
class Placement:
    """Where a device is: its resident (None for site-level devices) and room."""

    resident_id: int | None
    room: str | None


def _device(session: Session, device_id: str) -> Device:
    """A device in service; a decommissioned one is no longer edited, replaced or retired."""
    device = session.get(Device, (device_id or "").strip())
    if device is None:
        raise NotFoundError(
            f"No device '{device_id}'.", key="errors.care.device_missing", device=device_id
        )
    if device.decommissioned_at is not None:
        raise ConflictError(
            f"Device '{device.id}' is decommissioned.",
            key="errors.care.device_retired",
            device=device.id,
        )
    return device


def _type(value: str | None) -> str:
    kind = (value or "").strip().lower()
    if kind not in {t.value for t in DeviceType}:
        raise check.FieldError(
            "type", "Unknown device type.", key="errors.care.type_unknown", value=kind or "-"
        )
    return kind


def _placement(
    session: Session, site_id: str, resident_id: int | None, room: str | None
) -> Placement:
    """A checked resident (active, of the site) and room; no room means the resident's."""
    clean_room = check.text("room", room, limit=64)
    if resident_id is None:
        return Placement(None, clean_room)
    resident = session.get(Resident, resident_id)
    if resident is None or not resident.active:
        raise check.FieldError("resident", "No such resident.", key="errors.care.resident_missing")
    if resident.site_id != site_id:
        raise check.FieldError("resident", "Another site.", key="errors.care.resident_other_site")
    return Placement(resident.id, clean_room or resident.room)


def add_device(
    session: Session,
    viewer: Viewer,
    *,
    device_id: str,
    site_id: str,
    device_type: str,
    resident_id: int | None = None,
    room: str | None = None,
    name: str | None = None,
) -> str:
    """Register a device (checked, audited); a block on its id is lifted. Returns its id."""
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    clean_id = check.registry_id("id", device_id)
    site = get_site(session, site_id)
    kind = _type(device_type)
    registry.check_device_id_free(session, clean_id)
    where = _placement(session, site.id, resident_id, room)
    registry.add_device(
        session,
        device_id=clean_id,
        site_id=site.id,
        device_type=kind,
        resident_id=where.resident_id,
        name=check.text("name", name, limit=200),
        room=where.room,
        actor=actor,
    )
    return clean_id


def update_device(
    session: Session,
    viewer: Viewer,
    device_id: str,
    *,
    name: str | None,
    resident_id: int | None,
    room: str | None,
) -> list[str]:
    """Rename a device or reassign it to another resident or room of its site (audited).

    Returns the fields that changed.
    """
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    device = _device(session, device_id)
    where = _placement(session, device.site_id, resident_id, room)
    wanted = {
        "name": check.text("name", name, limit=200),
        "resident_id": where.resident_id,
        "room": where.room,
    }
    changed = {k: v for k, v in wanted.items() if getattr(device, k) != v}
    if not changed:
        return []
    old = {k: getattr(device, k) for k in changed}
    for key, value in changed.items():
        setattr(device, key, value)
    action = "device.reassign" if {"resident_id", "room"} & set(changed) else "device.update"
    audit.record(session, actor, action, "device", device.id, old=old, new=changed)
    session.flush()
    return list(changed)


def _retire(session: Session, actor_id: int, device: Device, reason: str | None) -> dict:
    facts = {
        "site_id": device.site_id,
        "type": device.type,
        "resident_id": device.resident_id,
        "room": device.room,
    }
    device.decommissioned_at = utcnow()
    session.merge(
        BlockedDevice(
            device_id=device.id,
            site_id=device.site_id,
            reason=reason,
            blocked_by=actor_id,
            blocked_at=utcnow(),
        )
    )
    session.flush()
    return facts


def decommission(
    session: Session, viewer: Viewer, device_id: str, *, reason: str | None = None
) -> None:
    """Take a device out of service: marked decommissioned, its id blocked; row and data kept."""
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    device = _device(session, device_id)
    clean = check.text("reason", reason, limit=500)
    facts = _retire(session, actor.id, device, clean)
    audit.record(session, actor, "device.decommission", "device", device_id, reason=clean, **facts)


def replace_device(
    session: Session,
    viewer: Viewer,
    old_id: str,
    new_id: str,
    *,
    name: str | None = None,
    reason: str | None = None,
) -> str:
    """A new device takes over an old one's site, type, resident and room; the old one is
    decommissioned. Returns the new id."""
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    old = _device(session, old_id)
    clean_new = check.registry_id("id", new_id)
    if clean_new == old.id:
        raise check.FieldError("id", "Same id.", key="errors.care.replace_same")
    if session.get(Device, clean_new) is not None:
        raise check.FieldError(
            "id", "Device exists.", key="errors.care.device_taken", device=clean_new
        )
    place = {
        "site_id": old.site_id,
        "device_type": old.type or "",
        "resident_id": old.resident_id,
        "room": old.room,
    }
    new_name = check.text("name", name, limit=200) or old.name
    clean_reason = check.text("reason", reason, limit=500)
    facts = _retire(session, actor.id, old, clean_reason)
    registry.add_device(session, device_id=clean_new, name=new_name, actor=actor, **place)
    audit.record(
        session,
        actor,
        "device.replace",
        "device",
        old_id,
        new_device=clean_new,
        reason=clean_reason,
        **facts,
    )
    return clean_new


def provision_credentials(
    session: Session, viewer: Viewer, device_id: str, *, rotate: bool = False
) -> device_credentials.Issued:
    """Give a device broker credentials as `viewer` (audited); the password is shown once."""
    require(viewer, Permission.MANAGE_DEVICES)
    actor = acting_user(session, viewer)
    _device(session, device_id)  # a translated 404 / 409 before the credential checks
    return device_credentials.provision(session, device_id, rotate=rotate, actor=actor)
