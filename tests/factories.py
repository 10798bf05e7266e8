"""Data factory for tests: sites, residents, devices and users with sensible defaults."""

from __future__ import annotations

import itertools
from datetime import time

from sqlalchemy.orm import Session

from core import registry, users
from core.contract.catalogue import DeviceType
from models import Device, Resident, Role, Site, User

DEFAULT_PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


class Factory:
    """Makes valid rows in the given session; every call gets fresh unique ids."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def site(self, site_id: str | None = None, timezone: str = "Asia/Seoul") -> Site:
        """A site (flushed)."""
        n = next(_counter)
        return registry.create_site(self.session, site_id or f"site{n}", f"Site {n}", timezone)

    def resident(self, site: Site | None = None, **kwargs: object) -> Resident:
        """A resident of `site` (a new site when None)."""
        n = next(_counter)
        kwargs.setdefault("active_hours", (time(7, 0), time(22, 0)))
        return registry.create_resident(
            self.session, site or self.site(), kwargs.pop("name", f"Resident {n}"), **kwargs
        )

    def device(
        self,
        device_type: DeviceType | str = DeviceType.WEARABLE,
        *,
        site: Site | None = None,
        resident: Resident | None = None,
        device_id: str | None = None,
        **fields: object,
    ) -> Device:
        """A registered device; extra fields (status, battery, quarantined...) are set after."""
        if site is None:
            site = self.session.get(Site, resident.site_id) if resident else self.site()
        assert site is not None
        device = registry.add_device(
            self.session,
            device_id=device_id or f"dev{next(_counter)}",
            site_id=site.id,
            device_type=str(device_type),
            resident_id=resident.id if resident else None,
        )
        for key, value in fields.items():
            setattr(device, key, value)
        self.session.flush()
        return device

    def user(
        self,
        role: Role | str = Role.CAREGIVER,
        *,
        username: str | None = None,
        password: str = DEFAULT_PASSWORD,
        residents: tuple[Resident, ...] = (),
        **kwargs: object,
    ) -> User:
        """A user, assigned to `residents` when a caregiver."""
        user = users.create_user(
            self.session,
            username=username or f"user{next(_counter)}",
            password=password,
            role=role,
            **kwargs,  # type: ignore[arg-type]
        )
        for resident in residents:
            users.assign(self.session, user, resident)
        self.session.flush()
        return user
