"""Residents for operators and admins: create, edit, emergency contacts, move room, discharge.

A discharged resident keeps every row (readings, alerts, notes); `active` becomes False, so lists
and windowed rules skip them. Instant critical events of their devices still alert (the rules
engine raises those per device): an emergency is never silenced by paperwork. Room moves are
kept in the audit log ("resident.move"), which is the resident's room history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import audit
from core.access import Permission, Viewer, acting_user, require
from core.errors import ConflictError, NotFoundError
from core.timeutil import utcnow
from core.use_cases import care_fields as check
from core.use_cases.sites_admin import get_site
from models import AuditEntry, EmergencyContact, Resident

RESIDENT_COLUMNS = [
    "resident_id",
    "site_id",
    "name",
    "room",
    "timezone",
    "active_start",
    "active_end",
    "notes",
    "active",
    "discharged_at",
]
DEFAULT_HOURS = (time(7, 0), time(22, 0))
MAX_CONTACTS = 5


@dataclass(frozen=True)
class ContactInput:
    """An emergency contact as typed: name, relation, phone, e-mail."""

    name: str
    relation: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ResidentRecord:
    """A resident's editable fields and emergency contacts."""

    resident_id: int
    site_id: str
    name: str
    room: str | None
    timezone: str | None
    active_start: time
    active_end: time
    notes: str | None
    active: bool
    discharged_at: datetime | None
    contacts: list[ContactInput] = field(default_factory=list)


def _require(viewer: Viewer) -> None:
    require(viewer, Permission.MANAGE_RESIDENTS)


def get_resident(session: Session, resident_id: int) -> Resident:
    """The resident (active or discharged), or NotFoundError with a translated message."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFoundError(f"No resident {resident_id}.", key="errors.care.resident_missing")
    return resident


def list_residents(
    session: Session, viewer: Viewer, *, site_id: str | None = None, include_discharged: bool = True
) -> pd.DataFrame:
    """Residents (of one site, or all), active first, then by site and name."""
    _require(viewer)
    query = select(Resident)
    if site_id is not None:
        query = query.where(Resident.site_id == site_id)
    if not include_discharged:
        query = query.where(Resident.active.is_(True))
    rows = session.scalars(
        query.order_by(Resident.active.desc(), Resident.site_id, Resident.name, Resident.id)
    ).all()
    return pd.DataFrame(
        [
            {
                "resident_id": r.id,
                "site_id": r.site_id,
                "name": r.name,
                "room": r.room,
                "timezone": r.timezone,
                "active_start": r.active_start,
                "active_end": r.active_end,
                "notes": r.care_notes,
                "active": r.active,
                "discharged_at": r.discharged_at,
            }
            for r in rows
        ],
        columns=RESIDENT_COLUMNS,
    )


def resident_record(session: Session, viewer: Viewer, resident_id: int) -> ResidentRecord:
    """One resident's fields and emergency contacts, to fill an edit form."""
    _require(viewer)
    r = get_resident(session, resident_id)
    return ResidentRecord(
        resident_id=r.id,
        site_id=r.site_id,
        name=r.name,
        room=r.room,
        timezone=r.timezone,
        active_start=r.active_start,
        active_end=r.active_end,
        notes=r.care_notes,
        active=r.active,
        discharged_at=r.discharged_at,
        contacts=contacts_of(session, r.id),
    )


def contacts_of(session: Session, resident_id: int) -> list[ContactInput]:
    """A resident's emergency contacts, in calling order (no permission check: callers check)."""
    rows = session.scalars(
        select(EmergencyContact)
        .where(EmergencyContact.resident_id == resident_id)
        .order_by(EmergencyContact.position, EmergencyContact.id)
    )
    return [ContactInput(c.name, c.relation, c.phone, c.email) for c in rows]


def check_contact(contact: ContactInput) -> ContactInput:
    """A contact with every field checked: a name and at least a phone or an e-mail."""
    name = check.text("contact_name", contact.name, limit=200, required=True) or ""
    relation = check.text("contact_relation", contact.relation, limit=64)
    phone = check.phone("contact_phone", contact.phone)
    email = check.email("contact_email", contact.email)
    if phone is None and email is None:
        raise check.FieldError(
            "contact_phone", "Give a phone or an e-mail.", key="errors.care.contact_unreachable"
        )
    return ContactInput(name, relation, phone, email)


def _check_contacts(contacts: Sequence[ContactInput]) -> list[ContactInput]:
    # Rows left wholly empty in a form are not contacts.
    kept = [c for c in contacts if any((v or "").strip() for v in (c.name, c.phone, c.email))]
    if len(kept) > MAX_CONTACTS:
        raise check.FieldError(
            "contact_name", "Too many contacts.", key="errors.care.contacts_many", n=MAX_CONTACTS
        )
    return [check_contact(c) for c in kept]


@dataclass(frozen=True)
class ResidentFields:
    """A resident's checked fields."""

    name: str
    room: str | None
    timezone: str | None
    active_start: time
    active_end: time
    notes: str | None


def check_resident_fields(
    *,
    name: str | None,
    room: str | None,
    timezone: str | None,
    active_start: str | time | None,
    active_end: str | time | None,
    notes: str | None,
) -> ResidentFields:
    """Every field of a resident checked, with the field named in the error."""
    clean_name = check.text("name", name, limit=200, required=True) or ""
    start = check.clock("active_start", active_start, DEFAULT_HOURS[0])
    end = check.clock("active_end", active_end, DEFAULT_HOURS[1])
    check.active_hours(start, end)
    return ResidentFields(
        name=clean_name,
        room=check.text("room", room, limit=64),
        timezone=check.timezone("timezone", timezone),
        active_start=start,
        active_end=end,
        notes=check.text("notes", notes, limit=4000),
    )


def _write_contacts(session: Session, resident_id: int, contacts: list[ContactInput]) -> None:
    session.execute(delete(EmergencyContact).where(EmergencyContact.resident_id == resident_id))
    for position, c in enumerate(contacts, start=1):
        session.add(
            EmergencyContact(
                resident_id=resident_id,
                name=c.name,
                relation=c.relation,
                phone=c.phone,
                email=c.email,
                position=position,
            )
        )


def create_resident(
    session: Session,
    viewer: Viewer,
    *,
    site_id: str,
    name: str,
    room: str | None = None,
    timezone: str | None = None,
    active_start: str | time | None = None,
    active_end: str | time | None = None,
    notes: str | None = None,
    contacts: Sequence[ContactInput] = (),
) -> int:
    """Admit a resident to a site (with emergency contacts); returns their id."""
    _require(viewer)
    actor = acting_user(session, viewer)
    site = get_site(session, site_id)
    fields = check_resident_fields(
        name=name,
        room=room,
        timezone=timezone,
        active_start=active_start,
        active_end=active_end,
        notes=notes,
    )
    people = _check_contacts(contacts)
    resident = Resident(
        site_id=site.id,
        name=fields.name,
        room=fields.room,
        timezone=fields.timezone,
        active_start=fields.active_start,
        active_end=fields.active_end,
        care_notes=fields.notes,
        active=True,
    )
    session.add(resident)
    session.flush()
    _write_contacts(session, resident.id, people)
    audit.record(
        session,
        actor,
        "resident.create",
        "resident",
        resident.id,
        site_id=site.id,
        name=fields.name,
        room=fields.room,
        contacts=len(people),
    )
    session.flush()
    return resident.id


def update_resident(
    session: Session,
    viewer: Viewer,
    resident_id: int,
    *,
    name: str,
    timezone: str | None,
    active_start: str | time | None,
    active_end: str | time | None,
    notes: str | None,
    contacts: Sequence[ContactInput] | None = None,
) -> list[str]:
    """Change a resident's name, timezone, active hours, notes and (when given) contacts.

    The room changes through `move_room`, so that every move is in the room history.
    Returns the fields that changed.
    """
    _require(viewer)
    actor = acting_user(session, viewer)
    resident = get_resident(session, resident_id)
    fields = check_resident_fields(
        name=name,
        room=resident.room,
        timezone=timezone,
        active_start=active_start,
        active_end=active_end,
        notes=notes,
    )
    wanted = {
        "name": fields.name,
        "timezone": fields.timezone,
        "active_start": fields.active_start,
        "active_end": fields.active_end,
        "care_notes": fields.notes,
    }
    changed = {k: v for k, v in wanted.items() if getattr(resident, k) != v}
    for key, value in changed.items():
        setattr(resident, key, value)
    names = list(changed)
    if contacts is not None:
        people = _check_contacts(contacts)
        if people != contacts_of(session, resident.id):
            _write_contacts(session, resident.id, people)
            names.append("contacts")
    if names:
        audit.record(
            session,
            actor,
            "resident.update",
            "resident",
            resident.id,
            fields=names,
            **{k: str(v) if isinstance(v, time) else v for k, v in changed.items()},
        )
    session.flush()
    return names


def move_room(session: Session, viewer: Viewer, resident_id: int, room: str) -> bool:
    """Move an active resident to another room (audited, so the room history is kept).

    Devices stay where they are installed: the Devices page reassigns them. False when the
    resident is in that room already.
    """
    _require(viewer)
    actor = acting_user(session, viewer)
    resident = get_resident(session, resident_id)
    if not resident.active:
        raise ConflictError("The resident was discharged.", key="errors.care.discharged")
    new_room = check.text("room", room, limit=64, required=True)
    if new_room == resident.room:
        return False
    old = resident.room
    resident.room = new_room
    audit.record(session, actor, "resident.move", "resident", resident.id, old=old, new=new_room)
    session.flush()
    return True


def room_history(session: Session, viewer: Viewer, resident_id: int) -> pd.DataFrame:
    """The rooms a resident lived in (from the audit log): at, room, by whom; oldest first."""
    _require(viewer)
    get_resident(session, resident_id)
    rows = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.target_type == "resident",
            AuditEntry.target_id == str(resident_id),
            AuditEntry.action.in_(("resident.create", "resident.move")),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    ).all()
    return pd.DataFrame(
        [
            {
                "at": e.at,
                "room": e.details.get("new" if e.action == "resident.move" else "room"),
                "by": e.actor_name,
            }
            for e in rows
        ],
        columns=["at", "room", "by"],
    )


def discharge(
    session: Session, viewer: Viewer, resident_id: int, *, reason: str | None = None
) -> bool:
    """Discharge (archive) a resident: data kept, lists and windowed rules skip them.

    False when they were discharged already.
    """
    _require(viewer)
    actor = acting_user(session, viewer)
    resident = get_resident(session, resident_id)
    if not resident.active:
        return False
    clean = check.text("reason", reason, limit=500)
    resident.active = False
    resident.discharged_at = utcnow()
    audit.record(
        session,
        actor,
        "resident.discharge",
        "resident",
        resident.id,
        reason=clean,
        room=resident.room,
    )
    session.flush()
    return True


def readmit(session: Session, viewer: Viewer, resident_id: int) -> bool:
    """Undo a discharge (a mistake, or the resident came back); False when active already."""
    _require(viewer)
    actor = acting_user(session, viewer)
    resident = get_resident(session, resident_id)
    if resident.active:
        return False
    resident.active = True
    resident.discharged_at = None
    audit.record(session, actor, "resident.readmit", "resident", resident.id)
    session.flush()
    return True
