"""Admitting residents and editing them (operators and admins), as the Care-home admin page does.

Thin: core.use_cases.residents_admin checks the role (managing residents), every field and the
emergency contacts, and audits "resident.create", "resident.update" and "resident.move" (a room
change is a move, kept as the resident's room history).
"""

from __future__ import annotations

from datetime import time

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import Session_, Writer
from api.ids import ResidentId
from api.params import NO_NUL_PATTERN, NOTE_PATTERN, SITE_ID_PATTERN, beyond_schema
from api.routers.residents import ResidentOut
from api.routers.residents import get_resident as read_resident
from core.use_cases import residents_admin
from core.use_cases.residents_admin import MAX_CONTACTS, ContactInput

_CHECKS = (
    "The site exists; timezone is an IANA name (e.g. Asia/Seoul); the active hours differ; "
    "each contact has a phone number or an e-mail address."
)

router = APIRouter(prefix="/residents", tags=["residents"])


class Contact(BaseModel):
    """An emergency contact, in calling order."""

    name: str = Field(max_length=200, pattern=NOTE_PATTERN)
    relation: str | None = Field(None, max_length=100, pattern=NO_NUL_PATTERN)
    phone: str | None = Field(None, max_length=50, pattern=NO_NUL_PATTERN)
    email: str | None = Field(None, max_length=200, pattern=NO_NUL_PATTERN)


class ResidentUpdate(BaseModel):
    """A resident's fields; `contacts` null keeps them, a list replaces them."""

    name: str = Field(max_length=200, pattern=NOTE_PATTERN)
    room: str | None = Field(
        None, max_length=64, pattern=NO_NUL_PATTERN, description="A change is a room move."
    )
    timezone: str | None = Field(
        None, max_length=64, pattern=NO_NUL_PATTERN, description="Null: the site's."
    )
    active_start: time | None = Field(None, description="Usual day start (default 07:00).")
    active_end: time | None = Field(None, description="Usual day end (default 22:00).")
    notes: str | None = Field(None, max_length=4000, pattern=NO_NUL_PATTERN)
    contacts: list[Contact] | None = Field(None, max_length=MAX_CONTACTS)


class ResidentCreate(ResidentUpdate):
    """A resident to admit to a site."""

    site_id: str = Field(pattern=SITE_ID_PATTERN)


def _contacts(body: ResidentUpdate) -> list[ContactInput] | None:
    if body.contacts is None:
        return None
    return [ContactInput(**c.model_dump()) for c in body.contacts]


@router.post(
    "",
    summary="Admit a resident",
    status_code=201,
    openapi_extra=beyond_schema(_CHECKS),
)
def create_resident(body: ResidentCreate, session: Session_, token: Writer) -> ResidentOut:
    """Admit a resident to a site with their emergency contacts (audited)."""
    resident_id = residents_admin.create_resident(
        session,
        token.viewer,
        site_id=body.site_id,
        name=body.name,
        room=body.room,
        timezone=body.timezone,
        active_start=body.active_start,
        active_end=body.active_end,
        notes=body.notes,
        contacts=_contacts(body) or (),
    )
    session.commit()
    return read_resident(resident_id, session, token)


@router.put("/{resident_id}", summary="Update a resident", openapi_extra=beyond_schema(_CHECKS))
def update_resident(
    resident_id: ResidentId, body: ResidentUpdate, session: Session_, token: Writer
) -> ResidentOut:
    """Change a resident's fields (audited); a new room is recorded as a move."""
    residents_admin.update_resident(
        session,
        token.viewer,
        resident_id,
        name=body.name,
        timezone=body.timezone,
        active_start=body.active_start,
        active_end=body.active_end,
        notes=body.notes,
        contacts=_contacts(body),
    )
    if body.room is not None:
        residents_admin.move_room(session, token.viewer, resident_id, body.room)
    session.commit()
    return read_resident(resident_id, session, token)
