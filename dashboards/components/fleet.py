"""Small display helpers shared by the operator pages (devices, commands, ingest)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.i18n import catalogue
from dashboards.components.i18n import language, t
from dashboards.components.timefmt import ago, local_time


def label(prefix: str, value: str | None, fallback_key: str = "app.common.unknown") -> str:
    """The translation of `prefix.value`, or the value itself when the catalogue has none."""
    if not value:
        return t(fallback_key)
    key = f"{prefix}.{value}"
    return t(key) if key in catalogue(language()) or key in catalogue("en") else value


def device_type(value: str | None) -> str:
    """A device type as people read it ('Gas valve'); 'not set' for a quarantined device."""
    return label("app.devices.types", value, "app.devices.types.none")


def when(value: datetime | None, timezone: str) -> str:
    """'2026-11-22 14:05 (5 min ago)' in the timezone; 'never' when None."""
    if value is None or pd.isna(value):
        return t("app.time.never")
    return f"{local_time(value, timezone)} ({ago(value)})"


def or_dash(value: object) -> str:
    """The value as text, or an em dash when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return t("app.common.none")
    return str(value)


def present(value: object) -> str | None:
    """The value as text, or None when missing (None, NaN, empty): never 'nan' in a label."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def device_pick_label(device_id: str, *about: object) -> str:
    """'sunrise-101-wearable — 101 wearable', or the id alone when nothing else is known."""
    parts = [text for text in map(present, about) if text]
    return f"{device_id} — {' · '.join(parts)}" if parts else device_id
