"""Sites for operators and admins: list, create and edit (id, name, timezone, address, contacts).

Every change is checked with translated messages naming the field, and audited.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.access import Permission, Viewer, acting_user, require
from core.errors import ConflictError, NotFoundError
from core.use_cases import care_fields as check
from models import Device, Resident, Site

SITE_COLUMNS = ["site_id", "name", "timezone", "address", "contacts", "residents", "devices"]


def get_site(session: Session, site_id: str) -> Site:
    """The site, or NotFoundError with a translated message."""
    site = session.get(Site, (site_id or "").strip())
    if site is None:
        raise NotFoundError(f"No site '{site_id}'.", key="errors.admin.site_missing", site=site_id)
    return site


def list_sites(session: Session, viewer: Viewer) -> pd.DataFrame:
    """Every site with its active residents and devices counted, by name."""
    require(viewer, Permission.MANAGE_RESIDENTS)
    residents = (
        select(func.count())
        .where(Resident.site_id == Site.id, Resident.active.is_(True))
        .correlate(Site)
        .scalar_subquery()
    )
    devices = select(func.count()).where(Device.site_id == Site.id).correlate(Site)
    rows = session.execute(
        select(Site, residents, devices.scalar_subquery()).order_by(Site.name, Site.id)
    ).all()
    return pd.DataFrame(
        [
            {
                "site_id": s.id,
                "name": s.name,
                "timezone": s.timezone,
                "address": s.address,
                "contacts": s.contacts,
                "residents": int(n_res or 0),
                "devices": int(n_dev or 0),
            }
            for s, n_res, n_dev in rows
        ],
        columns=SITE_COLUMNS,
    )


def _fields(
    name: str | None, timezone: str | None, address: str | None, contacts: str | None
) -> dict[str, str | None]:
    return {
        "name": check.text("name", name, limit=200, required=True),
        "timezone": check.timezone("timezone", timezone, required=True),
        "address": check.text("address", address, limit=500),
        "contacts": check.text("contacts", contacts, limit=2000),
    }


def create_site(
    session: Session,
    viewer: Viewer,
    *,
    site_id: str,
    name: str,
    timezone: str,
    address: str | None = None,
    contacts: str | None = None,
) -> str:
    """Create a site after checking every field; returns its id."""
    require(viewer, Permission.MANAGE_RESIDENTS)
    actor = acting_user(session, viewer)
    clean_id = check.registry_id("site", site_id)
    fields = _fields(name, timezone, address, contacts)
    if session.get(Site, clean_id) is not None:
        raise ConflictError(
            f"A site '{clean_id}' exists already.", key="errors.care.site_taken", site=clean_id
        )
    session.add(Site(id=clean_id, **fields))
    session.flush()
    audit.record(session, actor, "site.create", "site", clean_id, **fields)
    return clean_id


def update_site(
    session: Session,
    viewer: Viewer,
    site_id: str,
    *,
    name: str,
    timezone: str,
    address: str | None = None,
    contacts: str | None = None,
) -> list[str]:
    """Change a site's name, timezone, address and contacts; returns the fields that changed."""
    require(viewer, Permission.MANAGE_RESIDENTS)
    actor = acting_user(session, viewer)
    site = get_site(session, site_id)
    fields = _fields(name, timezone, address, contacts)
    changed = {k: v for k, v in fields.items() if getattr(site, k) != v}
    if not changed:
        return []
    old = {k: getattr(site, k) for k in changed}
    for key, value in changed.items():
        setattr(site, key, value)
    audit.record(session, actor, "site.update", "site", site.id, old=old, new=changed)
    session.flush()
    return list(changed)
