"""Residents the token's user looks after (core.access rules), read only, with their devices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.auth import Reader, Session_
from api.frames import plain
from api.params import MAX_ID
from core.access import AccessDenied
from core.errors import NotFoundError
from core.use_cases.resident import resident_choices, resident_profile

router = APIRouter(prefix="/residents", tags=["residents"])


class ResidentSummary(BaseModel):
    """A resident as lists show them."""

    id: int
    name: str
    room: str | None
    site_name: str | None


class ResidentDevice(BaseModel):
    """A device in service for a resident."""

    id: str
    type: str
    room: str | None
    status: str
    battery: float | None
    last_seen: datetime | None
    quarantined: bool


class ResidentOut(BaseModel):
    """A resident: who, where, their usual active hours and their devices."""

    id: int
    name: str
    room: str | None
    site_name: str
    timezone: str
    birth_year: int | None
    active_start: str = Field(pattern=r"^\d{2}:\d{2}$", description="Local time, HH:MM.")
    active_end: str = Field(pattern=r"^\d{2}:\d{2}$", description="Local time, HH:MM.")
    devices: list[ResidentDevice]


@router.get("", summary="List residents")
def list_residents(session: Session_, token: Reader) -> list[ResidentSummary]:
    """The active residents the token's user sees, by name."""
    return [
        ResidentSummary(id=r.id, name=r.name, room=r.room, site_name=r.site_name)
        for r in resident_choices(session, token.viewer)
    ]


@router.get("/{resident_id}", summary="Get a resident")
def get_resident(
    resident_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: Session_, token: Reader
) -> ResidentOut:
    """One resident the token's user sees, with devices (404 when missing or not theirs)."""
    try:
        profile = resident_profile(session, token.viewer, resident_id)
    except AccessDenied:
        # check_resident says "denied" for missing and hidden alike; so does the API, as 404.
        raise NotFoundError(
            f"No resident {resident_id}.", key="errors.care.resident_missing"
        ) from None
    devices = [
        ResidentDevice(**{key: plain(value) for key, value in row.items()})
        for row in profile.devices.to_dict("records")
    ]
    return ResidentOut(
        id=profile.id,
        name=profile.name,
        room=profile.room,
        site_name=profile.site_name,
        timezone=profile.timezone,
        birth_year=profile.birth_year,
        active_start=profile.active_start.strftime("%H:%M"),
        active_end=profile.active_end.strftime("%H:%M"),
        devices=devices,
    )
