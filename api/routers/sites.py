"""Sites the token's user works at or oversees (core.access.visible_site_ids), read only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.auth import Reader, Session_
from api.params import SITE_ID_PATTERN
from core.access import visible_site_ids
from core.errors import NotFoundError
from models import Site

router = APIRouter(prefix="/sites", tags=["sites"])


class SiteOut(BaseModel):
    """A site (care home or home)."""

    id: str
    name: str
    timezone: str
    address: str | None


def _out(site: Site) -> SiteOut:
    return SiteOut(id=site.id, name=site.name, timezone=site.timezone, address=site.address)


@router.get("", summary="List sites")
def list_sites(session: Session_, token: Reader) -> list[SiteOut]:
    """The sites the token's user sees (operators and admins: every site), by id."""
    ids = visible_site_ids(session, token.viewer)
    return [_out(site) for site_id in ids if (site := session.get(Site, site_id)) is not None]


@router.get("/{site_id}", summary="Get a site")
def get_site(
    site_id: Annotated[str, Path(pattern=SITE_ID_PATTERN)], session: Session_, token: Reader
) -> SiteOut:
    """One site the token's user sees (404 otherwise)."""
    if site_id not in visible_site_ids(session, token.viewer):
        raise NotFoundError(f"No site '{site_id}'.", key="errors.admin.site_missing", site=site_id)
    site = session.get(Site, site_id)
    assert site is not None
    return _out(site)
