"""Creating and editing sites (operators and admins), as the Care-home admin page does.

Thin: core.queries.sites_admin checks the role (managing residents), every field (with the field
named in the message) and audits "site.create" / "site.update".
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import Session_, Writer
from api.routers.sites import SiteOut
from api.routers.sites import get_site as read_site
from core.queries import sites_admin

router = APIRouter(prefix="/sites", tags=["sites"])


class SiteUpdate(BaseModel):
    """A site's name, timezone (IANA, e.g. Asia/Seoul), address and contacts."""

    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64)
    address: str | None = Field(None, max_length=500)
    contacts: str | None = Field(None, max_length=2000)


class SiteCreate(SiteUpdate):
    """A new site: its id (letters, digits, '-' and '_') and its fields."""

    id: str = Field(min_length=1, max_length=64)


@router.post("", summary="Create a site", status_code=201)
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


@router.put("/{site_id}", summary="Update a site")
def update_site(site_id: str, body: SiteUpdate, session: Session_, token: Writer) -> SiteOut:
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
