"""Quiet hours: the part of a person's day in which non-critical notifications wait."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.timeutil import ensure_utc


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Whether a local wall-clock time is within [start, end), which may wrap past midnight."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(
    now: datetime, start: time | None, end: time | None, timezone: str
) -> datetime | None:
    """When the quiet hours around `now` end (UTC), or None when it is not quiet."""
    if start is None or end is None:
        return None
    zone = ZoneInfo(timezone)
    local_now = ensure_utc(now).astimezone(zone)
    wall = local_now.time().replace(tzinfo=None)
    if not in_quiet_hours(wall, start, end):
        return None
    ends = datetime.combine(local_now.date(), end, tzinfo=zone)
    if ends <= local_now:
        ends = datetime.combine(local_now.date() + timedelta(days=1), end, tzinfo=zone)
    return ensure_utc(ends)
