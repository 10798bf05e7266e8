"""Creating and editing sites (operators and admins), as the Care-home admin page does.

Thin: core.use_cases.sites_admin checks the role (managing residents), every field (with the field
named in the message) and audits "site.create" / "site.update".
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import Session_, Writer
from api.ids import SiteId
from api.params import NO_NUL_PATTERN, NOTE_PATTERN, SITE_ID_PATTERN, beyond_schema
from api.routers.sites import SiteOut
from api.routers.sites import get_site as read_site
from core.use_cases import sites_admin

_CHECKS = "timezone is an IANA name (e.g. Asia/Seoul); the id is not taken (409)."

router = APIRouter(prefix="/sites", tags=["sites"])


class SiteUpdate(BaseModel):
    """A site's name, timezone (IANA, e.g. Asia/Seoul), address and contacts."""

    name: str = Field(max_length=200, pattern=NOTE_PATTERN)
    timezone: str = Field(max_length=64, pattern=NOTE_PATTERN)
    address: str | None = Field(None, max_length=500, pattern=NO_NUL_PATTERN)
    contacts: str | None = Field(None, max_length=2000, pattern=NO_NUL_PATTERN)


class SiteCreate(SiteUpdate):
    """A new site: its id (letters, digits, '-' and '_') and its fields."""

    id: str = Field(pattern=SITE_ID_PATTERN)


@router.post("", summary="Create a site", status_code=201, openapi_extra=beyond_schema(_CHECKS))
def create_site(body: SiteCreate, session: Session_, token: Writer) -> SiteOut:
    """Add a site (audited; 409 when the id is taken)."""
    site_id = sites_admin.create_site(
        session,
        token.viewer,
        site_id=body.id,
        name=body.name,
        timezone=body.timezone,
        address=body.address,
        contacts=body.contacts,
    )
    session.commit()
    return read_site(site_id, session, token)


@router.put("/{site_id}", summary="Update a site", openapi_extra=beyond_schema(_CHECKS))
def update_site(site_id: SiteId, body: SiteUpdate, session: Session_, token: Writer) -> SiteOut:
    """Change a site's fields (audited when anything changed)."""
    sites_admin.update_site(
        session,
        token.viewer,
        site_id,
        name=body.name,
        timezone=body.timezone,
        address=body.address,
        contacts=body.contacts,
    )
    session.commit()
    return read_site(site_id, session, token)
