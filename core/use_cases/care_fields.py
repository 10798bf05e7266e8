"""Checks of the fields a person types about sites, residents and devices, with translated
messages that name the field (the roster import reports them per row and column)."""

from __future__ import annotations

import re
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.contract.catalogue import is_registry_id
from core.errors import IotCareError

EMAIL_RE = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().-]{3,30}$")
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class FieldError(IotCareError):
    """A value a person typed is wrong; `field` names the field (a roster column)."""

    def __init__(self, field_name: str, message: str, /, *, key: str, **params: Any) -> None:
        super().__init__(message, key=key, **params)
        self.field = field_name


def text(field: str, value: str | None, *, limit: int, required: bool = False) -> str | None:
    """The value stripped (None when empty); FieldError when required and empty, or too long."""
    clean = (value or "").strip() or None
    if clean is None and required:
        raise FieldError(field, f"{field} is required.", key="errors.care.required", field=field)
    if clean is not None and len(clean) > limit:
        raise FieldError(
            field, f"{field} is too long.", key="errors.care.too_long", field=field, n=limit
        )
    return clean


def registry_id(field: str, value: str | None) -> str:
    """A site or device id (it becomes an MQTT topic level)."""
    clean = text(field, value, limit=64, required=True) or ""
    if not is_registry_id(clean):
        raise FieldError(
            field, f"'{clean}' is not a valid id.", key="errors.care.id_invalid", value=clean
        )
    return clean


def timezone(field: str, value: str | None, *, required: bool = False) -> str | None:
    """An IANA timezone name (None when empty and not required)."""
    clean = text(field, value, limit=64, required=required)
    if clean is None:
        return None
    try:
        ZoneInfo(clean)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            field, f"Unknown timezone '{clean}'.", key="errors.care.timezone_unknown", value=clean
        ) from None
    return clean


def clock(field: str, value: str | time | None, default: time) -> time:
    """A time of day from 'HH:MM' (the default when empty)."""
    if isinstance(value, time):
        return value
    clean = (value or "").strip()
    if not clean:
        return default
    match = TIME_RE.match(clean)
    if match is None:
        raise FieldError(
            field, f"'{clean}' is not a time (HH:MM).", key="errors.care.time_invalid", value=clean
        )
    return time(int(match.group(1)), int(match.group(2)))


def active_hours(start: time, end: time) -> tuple[time, time]:
    """Active hours that are not empty (they may wrap past midnight)."""
    if start == end:
        raise FieldError(
            "active_end", "Active hours must not be empty.", key="errors.care.hours_empty"
        )
    return start, end


def email(field: str, value: str | None) -> str | None:
    """An e-mail address, or None when empty."""
    clean = text(field, value, limit=255)
    if clean is not None and not EMAIL_RE.match(clean):
        raise FieldError(
            field,
            f"'{clean}' is not an e-mail address.",
            key="errors.care.email_invalid",
            value=clean,
        )
    return clean


def phone(field: str, value: str | None) -> str | None:
    """A phone number (digits, spaces, + ( ) . -), or None when empty."""
    clean = text(field, value, limit=64)
    if clean is not None and not PHONE_RE.match(clean):
        raise FieldError(
            field,
            f"'{clean}' is not a phone number.",
            key="errors.care.phone_invalid",
            value=clean,
        )
    return clean
