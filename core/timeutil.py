"""UTC, timezone-aware time helpers used everywhere instead of naive datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; refuse naive ones (their zone is a guess)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} (timezone-aware UTC required)")
    return value.astimezone(UTC)


def to_local(value: datetime, timezone: str) -> datetime:
    """Express a UTC instant in a site's or resident's local time."""
    return ensure_utc(value).astimezone(ZoneInfo(timezone))


def is_timezone(name: str | None) -> bool:
    """Whether `name` is a known IANA timezone (a bad one must not stop a page or a message)."""
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
