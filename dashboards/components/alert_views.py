"""Alerts and notifications as people read them: translated tables, times in the site's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from core.alerts.titles import title_text
from dashboards.components.i18n import language, t
from dashboards.components.timefmt import ago, local_time

# Streamlit's markdown badge colours per severity.
SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}


def when(value: Any) -> datetime | None:
    """A datetime from a DataFrame cell (None for NaT/None/NaN)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime):
        return value
    return None  # NaN in a column pandas did not read as datetimes: no time


def time_text(value: Any, timezone: str) -> str:
    """A cell's time in `timezone`, or an em dash."""
    return local_time(when(value), timezone)


def ago_text(value: Any) -> str:
    """How long ago a cell's time was."""
    return ago(when(value))


def severity_text(severity: str) -> str:
    """'Critical', '긴급'."""
    return t(f"app.severity.{severity}")


def severity_badge(severity: str) -> str:
    """A coloured markdown badge for a severity."""
    return f":{SEVERITY_COLOURS.get(severity, 'gray')}-badge[{severity_text(severity)}]"


def who_text(resident: Any, room: Any, device_id: Any) -> str:
    """Resident and room, or the device, or the whole site (empty cells count as none)."""
    resident, room, device_id = _text(resident), _text(room), _text(device_id)
    if resident and room:
        return t("notify.who.resident_room", name=resident, room=room)
    if resident:
        return t("notify.who.resident", name=resident)
    if device_id:
        return t("notify.who.device", device=device_id)
    return t("notify.who.site")


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def alerts_table(alerts: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The alert list with translated values and local times, for st.dataframe."""
    c = "app.alerts.col."
    rows = [
        {
            t(c + "severity"): severity_text(row.severity),
            t(c + "status"): t(f"app.alert_status.{row.status}"),
            t(c + "what"): row.what,
            t(c + "who"): who_text(row.resident, row.room, row.device_id),
            t(c + "opened"): time_text(row.opened_at, timezone),
            t(c + "waiting"): ago_text(row.opened_at) if row.status != "resolved" else "",
            t(c + "resolved"): time_text(row.resolved_at, timezone),
            t(c + "occurrences"): int(row.occurrences),
        }
        for row in alerts.itertuples(index=False)
    ]
    return pd.DataFrame(rows)


def history_table(history: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """An alert's history with translated actions and local times."""
    c = "app.alerts.history."
    rows = [
        {
            t(c + "at"): time_text(row.at, timezone),
            t(c + "action"): _action(row.action),
            t(c + "actor"): _text(row.actor) or t(c + "system"),
            t(c + "note"): _text(row.note),
        }
        for row in history.itertuples(index=False)
    ]
    return pd.DataFrame(rows)


def _action(action: str) -> str:
    try:
        return t(f"app.alerts.action.{action}")
    except KeyError:
        return action  # an action added to the lifecycle later: still shown


def channel_text(channel: str) -> str:
    """'E-mail', '이메일'."""
    return t(f"app.notifications.channels.{channel}")


def purpose_text(purpose: str) -> str:
    """'New alert', '새 알림'."""
    return t(f"app.notifications.purposes.{purpose}")


def delivery_status_text(status: str) -> str:
    """'Dead (failed)', '실패'."""
    return t(f"app.notifications.state.{status}")


def alert_notifications_table(notifications: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The messages of one alert, translated, local times; errors only when the query gave them."""
    c = "app.alerts.sent."
    show_errors = notifications["last_error"].notna().any()
    rows = []
    for row in notifications.itertuples(index=False):
        values = {
            t(c + "created"): time_text(row.created_at, timezone),
            t(c + "recipient"): _text(row.recipient),
            t(c + "channel"): channel_text(row.channel),
            t(c + "purpose"): purpose_text(row.purpose),
            t(c + "status"): delivery_status_text(row.status),
            t(c + "attempts"): int(row.attempts),
            t(c + "sent"): time_text(row.sent_at, timezone),
        }
        if show_errors:
            values[t(c + "error")] = _text(row.last_error)
        rows.append(values)
    return pd.DataFrame(rows)


def outbox_table(notifications: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The outbox list for operators, translated, local times."""
    c = "app.notifications.col."
    rows = [
        {
            t(c + "id"): int(row.id),
            t(c + "created"): time_text(row.created_at, timezone),
            t(c + "status"): delivery_status_text(row.status),
            t(c + "channel"): channel_text(row.channel),
            t(c + "purpose"): purpose_text(row.purpose),
            t(c + "recipient"): _text(row.recipient),
            t(c + "subject"): _text(row.subject),
            t(c + "attempts"): int(row.attempts),
            t(c + "next_attempt"): (
                time_text(row.next_attempt_at, timezone)
                if row.status in ("pending", "held", "sending")
                else ""
            ),
            t(c + "sent"): time_text(row.sent_at, timezone),
            t(c + "error"): _text(row.last_error),
            t(c + "alert"): title_text(_text(row.alert_title), language()),
        }
        for row in notifications.itertuples(index=False)
    ]
    return pd.DataFrame(rows)


def show_table(frame: pd.DataFrame) -> None:
    """A read-only table at full width without the index."""
    st.dataframe(frame, hide_index=True, width="stretch")
