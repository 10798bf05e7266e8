"""The registered site the simulator plays: its residents and devices, read from the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contract.catalogue import DeviceType
from models import Device, Resident, Site
from simulator.errors import SimulatorError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A registered device of a known type."""

    id: str
    type: DeviceType
    resident_id: int | None = None
    room: str | None = None


@dataclass(slots=True)
class ResidentSpec:
    """A resident, their daily rhythm and the devices that watch over them."""

    id: int
    index: int  # 1-based position at the site, as used by --scenario NAME:INDEX
    name: str
    room: str | None = None
    active_start: time = time(7, 0)
    active_end: time = time(22, 0)
    timezone: str | None = None
    devices: dict[DeviceType, DeviceSpec] = field(default_factory=dict)


@dataclass(slots=True)
class SiteSpec:
    """A site with its residents and every device to simulate."""

    id: str
    timezone: str
    residents: list[ResidentSpec] = field(default_factory=list)
    devices: list[DeviceSpec] = field(default_factory=list)

    def device(self, device_id: str) -> DeviceSpec | None:
        """The device with this id, if the site has it."""
        return next((d for d in self.devices if d.id == device_id), None)

    def resident(self, index: int) -> ResidentSpec | None:
        """The resident at this 1-based index, if any."""
        return self.residents[index - 1] if 1 <= index <= len(self.residents) else None

    def resident_by_id(self, resident_id: int) -> ResidentSpec | None:
        """The resident with this database id, if they live here."""
        return next((r for r in self.residents if r.id == resident_id), None)

    def first_of(self, kind: DeviceType) -> DeviceSpec | None:
        """The first device of a type (site devices first, e.g. the kitchen's)."""
        ordered = sorted(self.devices, key=lambda d: (d.resident_id is not None, d.id))
        return next((d for d in ordered if d.type is kind), None)


def load_site(session: Session, site_id: str) -> SiteSpec:
    """Read a site's active residents and typed devices; SimulatorError when there is nothing."""
    site = session.get(Site, site_id)
    if site is None:
        raise SimulatorError("unknown_site", f"No site with id '{site_id}'.", site=site_id)
    spec = SiteSpec(id=site.id, timezone=site.timezone)
    residents = session.scalars(
        select(Resident)
        .where(Resident.site_id == site_id, Resident.active.is_(True))
        .order_by(Resident.id)
    ).all()
    by_id: dict[int, ResidentSpec] = {}
    for index, resident in enumerate(residents, start=1):
        by_id[resident.id] = ResidentSpec(
            id=resident.id,
            index=index,
            name=resident.name,
            room=resident.room,
            active_start=resident.active_start,
            active_end=resident.active_end,
            timezone=resident.timezone,
        )
    spec.residents = list(by_id.values())
    known = {t.value: t for t in DeviceType}
    devices = session.scalars(
        select(Device)
        .where(Device.site_id == site_id, Device.quarantined.is_(False))
        .order_by(Device.id)
    ).all()
    for device in devices:
        kind = known.get(device.type or "")
        if kind is None:
            log.warning("skipping device %s: unknown type %r", device.id, device.type)
            continue
        owner = by_id.get(device.resident_id) if device.resident_id is not None else None
        item = DeviceSpec(device.id, kind, owner.id if owner else None, device.room)
        spec.devices.append(item)
        if owner is not None:
            owner.devices.setdefault(kind, item)
    if not spec.devices:
        raise SimulatorError(
            "no_devices", f"Site '{site_id}' has no registered devices to simulate.", site=site_id
        )
    return spec
