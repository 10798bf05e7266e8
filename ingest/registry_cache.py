"""In-memory view of the device registry, so the hot path needs no lookup per message."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from models import Device, Site


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """What ingest needs to know about a registered device."""

    site_id: str
    resident_id: int | None
    type: str | None
    quarantined: bool


class RegistryCache:
    """Devices and sites by id; refreshed from the database now and then."""

    def __init__(self, refresh_seconds: float = 60.0) -> None:
        self._devices: dict[str, KnownDevice] = {}
        self._sites: set[str] = set()
        self._lock = threading.Lock()
        self._refresh_seconds = refresh_seconds
        self._loaded_at = 0.0

    def load(self, connection: Connection) -> None:
        """Read every device and site."""
        devices = {
            row.id: KnownDevice(row.site_id, row.resident_id, row.type, row.quarantined)
            for row in connection.execute(
                select(
                    Device.id, Device.site_id, Device.resident_id, Device.type, Device.quarantined
                )
            )
        }
        sites = set(connection.scalars(select(Site.id)))
        with self._lock:
            self._devices, self._sites = devices, sites
            self._loaded_at = time.monotonic()

    def refresh_if_stale(self, connection: Connection) -> None:
        """Reload when older than the refresh period (operators register devices meanwhile)."""
        if time.monotonic() - self._loaded_at >= self._refresh_seconds:
            self.load(connection)

    def get(self, device_id: str) -> KnownDevice | None:
        """The device, or None when the registry does not know it (yet)."""
        return self._devices.get(device_id)

    def has_site(self, site_id: str) -> bool:
        """Whether the site is registered."""
        return site_id in self._sites

    def unknown(self, device_ids: Iterable[str]) -> list[str]:
        """The ids among these that are not registered."""
        devices = self._devices
        return [d for d in device_ids if d not in devices]

    def remember(self, device_id: str, device: KnownDevice) -> None:
        """Add a device ingest registered itself (quarantined)."""
        with self._lock:
            self._devices[device_id] = device
            self._sites.add(device.site_id)

    def lookup(self, device_id: str) -> tuple[str | None, int | None]:
        """(type, resident id) of a device, for sinks that tag by them."""
        known = self._devices.get(device_id)
        return (known.type, known.resident_id) if known else (None, None)
