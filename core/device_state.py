"""What a device's status means to a person: its reported status, or "silent" when it went quiet.

A device reports `online` on its status topic and then may simply stop talking (power cut, out
of range) without its last will ever arriving. Shown as online, that would be a lie: a device
that missed several of its expected messages (core.contract.catalogue.REPORT_INTERVALS, per
device type) is shown as silent instead. Derived at read time; nothing is stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, func, or_

from core.contract.catalogue import REPORT_INTERVALS
from core.timeutil import ensure_utc
from models import Device, DeviceStatus, in_service

# Expected messages a device may miss before it is shown as silent: one late or lost message
# (a broker restart, a busy ingest) is not worth an operator's look; three in a row are.
MISSED_MESSAGES = 3
# Device types without an interval (unknown, quarantined) report at least every 30 minutes.
DEFAULT_INTERVAL = max(REPORT_INTERVALS.values())


class ShownStatus(StrEnum):
    """A device's status as the lists show it."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    SILENT = "silent"
    OFFLINE = "offline"


def silent_after(device_type: str | None) -> timedelta:
    """How long a device of this type may say nothing before it is shown as silent."""
    interval = REPORT_INTERVALS.get(device_type or "", DEFAULT_INTERVAL)
    return interval * MISSED_MESSAGES


def is_silent(
    status: DeviceStatus | str | None,
    last_seen: datetime | None,
    device_type: str | None,
    now: datetime,
) -> bool:
    """Whether a device not reported offline has said nothing for longer than it should."""
    if status == DeviceStatus.OFFLINE or last_seen is None:
        return False
    return ensure_utc(last_seen) < now - silent_after(device_type)


def shown_status(
    status: DeviceStatus | str | None,
    last_seen: datetime | None,
    device_type: str | None,
    now: datetime,
) -> ShownStatus:
    """The status to show: the reported one, or SILENT when the device went quiet."""
    if is_silent(status, last_seen, device_type, now):
        return ShownStatus.SILENT
    return ShownStatus(DeviceStatus(status or DeviceStatus.UNKNOWN).value)


def silent_clause(now: datetime) -> ColumnElement[bool]:
    """SQL for is_silent: per device type, last_seen older than its silence limit."""
    known = list(REPORT_INTERVALS)
    # Never NULL, so that its negation ("not silent") holds for devices never heard or untyped.
    kind_of = func.coalesce(Device.type, "")
    per_type = [
        and_(kind_of == kind, Device.last_seen < now - silent_after(kind)) for kind in known
    ]
    other = and_(kind_of.not_in(known), Device.last_seen < now - silent_after(None))
    return and_(
        in_service(),
        Device.status != DeviceStatus.OFFLINE,
        Device.last_seen.is_not(None),
        or_(*per_type, other),
    )
