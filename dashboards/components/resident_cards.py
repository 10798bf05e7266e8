"""Residents as people read them: alert lines, vital signs, device problems, the overview card."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.alerts.titles import title_text
from core.i18n import plural
from core.rules.describe import amount, describe_finding, metric_name
from core.use_cases.overview import (
    ACTIVITY_LOOKBACK,
    VITALS_FRESH,
    AlertBrief,
    CareState,
    DeviceProblem,
    Problem,
    ResidentCard,
    Vital,
)
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.timefmt import ago

log = logging.getLogger(__name__)

RESIDENT_PAGE = "app_pages/resident.py"
STATE_COLORS = {CareState.CRITICAL: "red", CareState.ATTENTION: "orange", CareState.OK: "green"}
STATE_ICONS = {
    CareState.CRITICAL: ":material/emergency:",
    CareState.ATTENTION: ":material/warning:",
    CareState.OK: ":material/check_circle:",
}
SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}
# Alerts a card lists before "and N more".
CARD_ALERTS = 2


def device_name(device_type: str | None) -> str:
    """'Wearable', '웨어러블'; 'Unknown device' for unregistered types."""
    key = device_type or "unknown"
    try:
        return t(f"app.overview.device_types.{key}")
    except KeyError:
        return t("app.overview.device_types.unknown")


def event_name(event_type: str) -> str:
    """An event type in words ('fall detected'); its code when unknown."""
    try:
        return t(f"rules.events.{event_type}")
    except KeyError:
        return event_type


def alert_text(kind: str, details: Mapping[str, Any], title: str) -> str:
    """What an alert is about in the reader's language; the stored title when it cannot say."""
    if kind == "event" and details.get("event_type"):
        return t("app.overview.event_reported", event=event_name(str(details["event_type"])))
    try:
        return describe_finding(kind, details, language())
    except (KeyError, ValueError, TypeError) as error:
        log.debug("no finding text for a %s alert (%s); showing its title", kind, error)
        return title_text(title, language())


def alert_line(alert: AlertBrief) -> str:
    """'Critical: Device reported: fall detected · 5 min ago' (Markdown, coloured severity)."""
    severity = (
        f":{SEVERITY_COLORS[alert.severity.value]}[**{t(f'app.severity.{alert.severity}')}**]"
    )
    key = "alert_open" if alert.status.value == "open" else "alert_acknowledged"
    return t(
        f"app.overview.{key}",
        severity=severity,
        text=md_escape(alert_text(alert.kind, alert.details, alert.title)),
        ago=ago(alert.opened_at),
    )


def vital_text(vital: Vital) -> str:
    """'Heart rate 72 bpm ↑'."""
    arrow = t(f"app.overview.trend.{vital.trend}") if vital.trend else ""
    return t(
        "app.overview.vital",
        metric=metric_name(vital.metric, language()),
        amount=amount(vital.metric, round(vital.value, 1)),
        arrow=arrow,
    ).strip()


def problem_lines(device: DeviceProblem) -> list[str]:
    """One line per problem of a device, e.g. 'Wearable: battery 9%'."""
    name = device_name(device.type)
    lines = []
    for problem in device.problems:
        params: dict[str, Any] = {"device": name}
        if problem in (Problem.OFFLINE, Problem.SILENT):
            params["ago"] = ago(device.last_seen)
        if problem is Problem.BATTERY_LOW:
            params["pct"] = device.battery
        lines.append(t(f"app.overview.problem.{problem}", **params))
    return lines


def state_badge(state: CareState) -> None:
    """The resident's state as a coloured badge."""
    st.badge(t(f"app.overview.state.{state}"), icon=STATE_ICONS[state], color=STATE_COLORS[state])


def render_card(card: ResidentCard) -> None:
    """One resident's card: state, alerts, last movement, vitals, devices, link to their day."""
    with st.container(border=True):
        title = (
            t("app.overview.card_title", name=md_escape(card.name), room=md_escape(card.room))
            if card.room
            else md_escape(card.name)
        )
        st.markdown(f"**{title}**")
        state_badge(card.state)
        lines: list[str] = []
        if card.site_alert:
            lines.append(f":red[{t('app.overview.site_alert_card')}]")
        lines += [alert_line(a) for a in card.alerts[:CARD_ALERTS]]
        if len(card.alerts) > CARD_ALERTS:
            lines.append(plural(t, "app.overview.more_alerts", len(card.alerts) - CARD_ALERTS))
        if card.last_movement is not None:
            lines.append(
                t(
                    "app.overview.last_movement",
                    ago=ago(card.last_movement),
                    room=md_escape(card.movement_room or "-"),
                )
            )
        else:
            lines.append(
                plural(
                    t,
                    "app.overview.no_movement",
                    ACTIVITY_LOOKBACK.days,
                    days=ACTIVITY_LOOKBACK.days,
                )
            )
        if card.vitals:
            lines.append(" · ".join(md_escape(vital_text(v)) for v in card.vitals))
        else:
            fresh_hours = int(VITALS_FRESH.total_seconds() // 3600)
            lines.append(plural(t, "app.overview.no_vitals", fresh_hours, hours=fresh_hours))
        for device in card.device_problems:
            lines.extend(f":orange[{md_escape(line)}]" for line in problem_lines(device))
        if not card.alerts and not card.device_problems and not card.site_alert:
            lines.append(t("app.overview.nothing_wrong"))
        st.markdown("  \n".join(lines))
        st.page_link(
            RESIDENT_PAGE,
            label=t("app.overview.open_resident"),
            icon=":material/person:",
            query_params={"resident": str(card.resident_id)},
        )
