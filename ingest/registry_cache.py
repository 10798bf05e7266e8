"""In-memory view of the device registry, so the hot path needs no lookup per message."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Set
from dataclasses import dataclass

from sqlalchemy import Connection, select

from models import BlockedDevice, Device, Site


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """What ingest needs to know about a registered device."""

    site_id: str
    resident_id: int | None
    type: str | None
    quarantined: bool


class RegistryCache:
    """Devices, blocked device ids and sites; refreshed from the database now and then."""

    def __init__(self, refresh_seconds: float = 60.0) -> None:
        self._devices: dict[str, KnownDevice] = {}
        self._sites: set[str] = set()
        # Replaced, never mutated: the MQTT thread reads it without the lock.
        self._blocked: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._refresh_seconds = refresh_seconds
        self._loaded_at = 0.0

    def load(self, connection: Connection) -> None:
        """Read every device, blocked id and site."""
        devices = {
            row.id: KnownDevice(row.site_id, row.resident_id, row.type, row.quarantined)
            for row in connection.execute(
                select(
                    Device.id, Device.site_id, Device.resident_id, Device.type, Device.quarantined
                )
            )
        }
        sites = set(connection.scalars(select(Site.id)))
        blocked = frozenset(connection.scalars(select(BlockedDevice.device_id)))
        with self._lock:
            self._devices, self._sites, self._blocked = devices, sites, blocked
            self._loaded_at = time.monotonic()

    def refresh_if_stale(self, connection: Connection) -> None:
        """Reload when older than the refresh period (operators register devices meanwhile)."""
        if time.monotonic() - self._loaded_at >= self._refresh_seconds:
            self.load(connection)

    def get(self, device_id: str) -> KnownDevice | None:
        """The device, or None when the registry does not know it (yet)."""
        return self._devices.get(device_id)

    def site_of(self, device_id: str) -> str | None:
        """The site a device is registered at, or None when the registry does not know it."""
        known = self._devices.get(device_id)
        return known.site_id if known is not None else None

    def blocked(self) -> Set[str]:
        """Ids of devices an operator rejected: their messages become dead letters."""
        return self._blocked

    def block(self, device_ids: Iterable[str]) -> None:
        """Remember blocks found in the database before the next refresh."""
        with self._lock:
            self._blocked = self._blocked | frozenset(device_ids)
            for device_id in device_ids:
                self._devices.pop(device_id, None)

    def has_site(self, site_id: str) -> bool:
        """Whether the site is registered."""
        return site_id in self._sites

    def unknown(self, device_ids: Iterable[str]) -> list[str]:
        """The ids among these that are not registered."""
        devices = self._devices
        return [d for d in device_ids if d not in devices]

    def remember_all(self, devices: dict[str, KnownDevice]) -> None:
        """Add devices found in (or written to) the database; call only once that is committed."""
        if not devices:
            return
        with self._lock:
            self._devices.update(devices)
            self._sites.update(d.site_id for d in devices.values())

    def lookup(self, device_id: str) -> tuple[str | None, int | None]:
        """(type, resident id) of a device, for sinks that tag by them."""
        known = self._devices.get(device_id)
        return (known.type, known.resident_id) if known else (None, None)
