"""Times as people read them: in the site's timezone, and how long ago."""

from __future__ import annotations

from datetime import datetime

from core.i18n import plural
from core.timeutil import ensure_utc, to_local, utcnow
from dashboards.components.i18n import t


def local_time(value: datetime | None, timezone: str, with_date: bool = True) -> str:
    """'2026-11-22 14:05' (or '14:05') in the given timezone; an em dash for None."""
    if value is None:
        return "—"
    local = to_local(value, timezone)
    return local.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago' in the session's language."""
    if value is None:
        return t("app.time.never")
    seconds = max(0.0, ((now or utcnow()) - ensure_utc(value)).total_seconds())
    if seconds < 60:
        return t("app.time.just_now")
    if seconds < 3600:
        return t("app.time.minutes_ago", n=int(seconds // 60))
    if seconds < 86400 * 2:
        return t("app.time.hours_ago", n=int(seconds // 3600))
    return plural(t, "app.time.days_ago", int(seconds // 86400))
