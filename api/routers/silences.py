"""Silences: hold windowed alerts about a resident, a site or a device for a while.

Thin: core.silences checks who may silence what (a caregiver: their own residents; sites and
devices: operators and admins), the dates and the note, and audits creating and cancelling as
the app does. Critical instant events (falls, panic, fire, gas) are never held.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Reader, Session_, Writer
from api.ids import SilenceId
from api.params import MAX_ID, NO_NUL_PATTERN, SITE_ID_PATTERN, Timestamp, beyond_schema
from api.visibility import hidden_as_missing
from core import silences as core_silences
from core.access import Permission, Viewer
from core.errors import NotFoundError
from core.timeutil import utcnow
from models import Silence, SilenceReason, SilenceScope

router = APIRouter(prefix="/silences", tags=["silences"])


class SilenceOut(BaseModel):
    """A silence: what it covers, why, and when it holds alerts."""

    id: int
    scope: SilenceScope
    target: str = Field(description="The resident id, site id or device id.")
    label: str = Field(description="The resident's, site's or device's name.")
    site_id: str
    reason: SilenceReason
    note: str | None
    starts_at: datetime
    ends_at: datetime = Field(description="When it stops holding alerts (earlier if cancelled).")
    active: bool = Field(description="Whether it holds alerts now.")


class SilenceCreate(BaseModel):
    """A silence to record; it starts now unless `starts_at` is given."""

    scope: SilenceScope
    target: str = Field(pattern=SITE_ID_PATTERN, description="Resident, site or device id.")
    ends_at: Timestamp
    starts_at: Timestamp | None = None
    reason: SilenceReason
    note: str | None = Field(None, max_length=core_silences.NOTE_LENGTH, pattern=NO_NUL_PATTERN)


def _row_out(session: Session_, silence: Silence) -> SilenceOut:
    target = core_silences.resolve_target(session, silence.scope, core_silences.target_id(silence))
    now = utcnow()
    return SilenceOut(
        id=silence.id,
        scope=SilenceScope(silence.scope),
        target=target.ident,
        label=target.label,
        site_id=target.site_id,
        reason=SilenceReason(silence.reason),
        note=silence.note,
        starts_at=silence.starts_at,
        ends_at=silence.effective_end,
        active=silence.starts_at <= now < silence.effective_end,
    )


def _hidden(
    viewer: Viewer, scope: SilenceScope, message: str, key: str, **params: object
) -> AbstractContextManager[None]:
    """What the viewer may not silence but could see (their role's kind of target) is missing."""
    needed = (
        Permission.VIEW_RESIDENTS if scope is SilenceScope.RESIDENT else Permission.MANAGE_DEVICES
    )
    return hidden_as_missing(viewer, needed, message, key, **params)


@router.get("", summary="List current and upcoming silences")
def list_silences(
    session: Session_,
    token: Reader,
    resident: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Of this resident and their site.")
    ] = None,
) -> list[SilenceOut]:
    """Active and upcoming silences the token's user sees."""
    with hidden_as_missing(
        token.viewer,
        Permission.VIEW_RESIDENTS,
        f"No resident {resident}.",
        "errors.care.resident_missing",
    ):
        views = core_silences.visible_silences(session, token.viewer, resident_id=resident)
    return [
        SilenceOut(
            id=v.id,
            scope=v.scope,
            target=v.target,
            label=v.label,
            site_id=v.site_id,
            reason=v.reason,
            note=v.note,
            starts_at=v.starts_at,
            ends_at=v.ends_at,
            active=v.active,
        )
        for v in views
    ]


@router.post(
    "",
    summary="Create a silence",
    status_code=201,
    openapi_extra=beyond_schema(
        "Starts now or later, ends after it starts, lasts at most the longest silence."
    ),
)
def create_silence(body: SilenceCreate, session: Session_, token: Writer) -> SilenceOut:
    """Hold windowed alerts about the target until `ends_at` (audited)."""
    target = body.target.strip()
    if body.scope is SilenceScope.RESIDENT and not (target.isdigit() and int(target) <= MAX_ID):
        raise NotFoundError(
            f"There is no resident '{target}' to silence.",
            key="errors.silence.missing_resident",
            ident=target,
        )
    with _hidden(
        token.viewer,
        body.scope,
        f"There is no {body.scope.value} '{target}' to silence.",
        f"errors.silence.missing_{body.scope.value}",
        ident=target,
    ):
        silence = core_silences.create_as(
            session,
            token.viewer,
            scope=body.scope,
            target=target,
            ends_at=body.ends_at,
            starts_at=body.starts_at,
            reason=body.reason,
            note=body.note,
        )
    session.commit()
    return _row_out(session, silence)


@router.delete("/{silence_id}", summary="Cancel a silence")
def cancel_silence(silence_id: SilenceId, session: Session_, token: Writer) -> SilenceOut:
    """End a silence now, or withdraw one not begun yet (audited; 409 when it is over)."""
    found = session.get(Silence, silence_id)
    scope = SilenceScope(found.scope) if found else SilenceScope.RESIDENT
    with _hidden(
        token.viewer,
        scope,
        f"There is no silence {silence_id}.",
        "errors.silence.missing",
        ident=silence_id,
    ):
        silence = core_silences.cancel_as(session, token.viewer, silence_id)
    session.commit()
    return _row_out(session, silence)
