"""Resident: their day (events, alerts, room to room), vital signs, sleep and activity, care notes.

Open with ?resident=<id> (the overview's cards link here) or choose among the residents the
viewer may see. A caregiver asking for a resident not assigned to them gets a message, no data.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from core.access import Permission
from core.device_state import shown_status
from core.errors import IotCareError
from core.i18n import plural
from core.rules.describe import amount, metric_name
from core.timeutil import utcnow
from core.use_cases.alerts import UNRESOLVED, list_alerts
from core.use_cases.overview import problems_of
from core.use_cases.resident import (
    DayTimeline,
    daily_reports,
    day_timeline,
    local_today,
    resident_choices,
    resident_profile,
    vitals_series,
)
from dashboards.components import care_notes
from dashboards.components.charts import reports_figure, timeline_figure, vitals_figure
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.page import require_page, show_error
from dashboards.components.resident_cards import alert_text, device_name, event_name
from dashboards.components.silences import resident_banner, resident_silences
from dashboards.components.timefmt import ago, local_time
from dashboards.context import db_session

CHOICE_KEY = "resident.choice"
RANGE_KEY = "resident.range"
DAY_KEY = "resident.day"
RANGES = {
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
REPORT_DAYS = 14

viewer = require_page(Permission.VIEW_RESIDENTS)
st.title(t("app.nav.resident"))


def _choice_label(choices: dict[int, Any], resident_id: int) -> str:
    """'Kim · room 101', with the site when the viewer sees residents of several sites."""
    choice = choices[resident_id]
    label = (
        t("app.resident.choice", name=choice.name, room=choice.room) if choice.room else choice.name
    )
    if len({c.site_name for c in choices.values()}) > 1 and choice.site_name:
        label = t("app.resident.choice_site", label=label, site=choice.site_name)
    return label


def _in_trouble(visible: set[int]) -> int | None:
    """The resident of the most severe, longest-waiting unresolved alert (the one to open first)."""
    if not viewer.can(Permission.HANDLE_ALERTS):
        return None
    with db_session() as session:
        # Most severe first, oldest first within a severity: the order the alerts page lists.
        alerts = list_alerts(session, viewer, UNRESOLVED, language=language())
    for about in alerts["resident_id"] if not alerts.empty else ():
        if pd.notna(about) and int(about) in visible:
            return int(about)
    return None


def _sync_query_param() -> None:
    st.query_params["resident"] = str(st.session_state[CHOICE_KEY])


def _requested(param: str | None, visible: set[int]) -> int | bool | None:
    """The id asked for in the URL; False when it is not one the viewer may see."""
    if param is None:
        return None
    try:
        wanted = int(param)
    except ValueError:
        return False
    return wanted if wanted in visible else False


def _describe_item(row: pd.Series) -> str:
    """A timeline row in words."""
    if row["kind"] == "alert":
        return t(
            "app.resident.day.alert",
            severity=t(f"app.severity.{row['severity']}"),
            status=t(f"app.alert_status.{row['status']}"),
            text=alert_text(row["code"], row["details"], row["title"]),
        )
    return t("app.resident.day.event", event=event_name(row["code"]))


def _duration(minutes: float | None) -> str:
    if minutes is None or pd.isna(minutes):
        return t("app.common.none")
    hours, rest = divmod(round(float(minutes)), 60)
    return t("app.resident.sleep.duration", hours=hours, minutes=rest)


def _figure(value: Any) -> str:
    return t("app.common.none") if value is None or pd.isna(value) else f"{value:g}"


def day_section(resident_id: int, timezone: str) -> None:
    """The resident's local day: a timeline chart and the list of what happened."""
    today = local_today(timezone)
    day = st.date_input(t("app.resident.day.date"), value=today, max_value=today, key=DAY_KEY)
    with db_session() as session:
        timeline: DayTimeline = day_timeline(session, viewer, resident_id, day)
    if timeline.items.empty and timeline.stays.empty:
        st.info(t("app.resident.day.empty", day=day.isoformat()))
        return
    st.plotly_chart(timeline_figure(timeline, t, _describe_item), width="stretch")
    if not timeline.stays.empty:
        st.caption(
            t(
                "app.resident.day.stays",
                n=plural(t, "count.stays", len(timeline.stays)),
                rooms=plural(t, "count.rooms", timeline.stays["room"].nunique()),
            )
        )
    if timeline.items.empty:
        st.caption(t("app.resident.day.no_items", day=day.isoformat()))
        return
    items = timeline.items
    st.dataframe(
        pd.DataFrame(
            {
                t("app.resident.day.time"): [
                    local_time(ts, timezone, with_date=False) for ts in items["ts"]
                ],
                t("app.resident.day.kind"): [
                    t(f"app.resident.day.kind_{kind}") for kind in items["kind"]
                ],
                t("app.resident.day.what"): [_describe_item(row) for _, row in items.iterrows()],
                t("app.resident.day.room"): items["room"].fillna(t("app.common.none")),
            }
        ),
        hide_index=True,
        width="stretch",
    )


def vitals_section(resident_id: int, timezone: str) -> None:
    """Vital signs over the chosen range: raw readings for hours, hourly means for days."""
    st.session_state.setdefault(RANGE_KEY, DEFAULT_RANGE)
    chosen = st.segmented_control(
        t("app.resident.vitals.range"),
        options=list(RANGES),
        format_func=lambda key: t(f"app.resident.vitals.ranges.{key}"),
        key=RANGE_KEY,
    )
    span = RANGES[chosen or DEFAULT_RANGE]
    end = utcnow()
    with db_session() as session:
        series = vitals_series(session, viewer, resident_id, end - span, end)
    if series.frame.empty:
        st.info(t("app.resident.vitals.empty"))
        return
    latest = series.frame.sort_values("ts").groupby("metric").tail(1)
    columns = st.columns(min(3, len(latest)))
    for column, (_, row) in zip(columns, latest.iterrows(), strict=False):
        column.metric(
            metric_name(row["metric"], language()),
            amount(row["metric"], round(float(row["value"]), 1)),
            help=local_time(row["ts"].to_pydatetime(), timezone),
        )
    st.plotly_chart(
        vitals_figure(series, timezone, t, lambda metric: metric_name(metric, language())),
        width="stretch",
    )
    st.caption(t(f"app.resident.vitals.{series.resolution}", timezone=timezone))


def sleep_section(resident_id: int) -> None:
    """Sleep and activity from the daily care reports."""
    with db_session() as session:
        reports = daily_reports(session, viewer, resident_id, limit=REPORT_DAYS)
    if reports.empty:
        st.info(t("app.resident.sleep.empty"))
        return
    newest = reports.iloc[0]
    st.subheader(t("app.resident.sleep.latest", day=newest["day"].isoformat()))
    first, second, third = st.columns(3)
    first.metric(t("app.resident.sleep.in_bed"), _duration(newest["in_bed_minutes"]))
    first.metric(t("app.resident.sleep.times_up"), _figure(newest["times_up"]))
    second.metric(t("app.resident.sleep.active_hours"), _figure(newest["active_hours"]))
    second.metric(t("app.resident.sleep.motion"), _figure(newest["motion_total"]))
    third.metric(t("app.resident.sleep.night_doors"), _figure(newest["night_doors"]))
    third.metric(t("app.resident.sleep.alerts"), _figure(newest["alerts"]))
    if len(reports) > 1:
        st.caption(plural(t, "app.resident.sleep.chart_title", len(reports)))
        st.plotly_chart(reports_figure(reports, t), width="stretch")


def notes_section(profile: Any, resident_id: int, timezone: str) -> None:
    """The care notes, contacts, the dated care log and the resident's devices with problems."""
    st.subheader(t("app.resident.notes.title"))
    if profile.care_notes and profile.care_notes.strip():
        st.text(profile.care_notes)
    else:
        st.caption(t("app.resident.notes.empty"))
    care_notes.render(viewer, resident_id, timezone)
    st.subheader(t("app.resident.notes.devices"))
    devices = profile.devices
    if devices.empty:
        st.info(t("app.resident.notes.no_devices"))
        return
    now = utcnow()
    rows = []
    for device in devices.itertuples():
        last_seen = None if pd.isna(device.last_seen) else device.last_seen
        battery = None if pd.isna(device.battery) else int(device.battery)
        problems = problems_of(
            device.status, last_seen, battery, bool(device.quarantined), now, device.type
        )
        rows.append(
            {
                t("app.resident.notes.device"): device_name(device.type),
                t("app.resident.day.room"): device.room or t("app.common.none"),
                t("app.resident.notes.status"): t(
                    f"app.device_status.{shown_status(device.status, last_seen, device.type, now)}"
                ),
                t("app.resident.notes.battery"): battery,
                t("app.resident.notes.last_seen"): ago(last_seen)
                if last_seen
                else t("app.time.never"),
                t("app.resident.notes.problems"): ", ".join(
                    t(f"app.resident.notes.problem.{p}") for p in problems
                ),
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


# --- the page

try:
    with db_session() as session:
        choices = {c.id: c for c in resident_choices(session, viewer)}
except IotCareError as error:
    show_error(error)
    st.stop()
if not choices:
    st.info(
        t("app.resident.empty_all" if viewer.sees_all_residents else "app.resident.empty_caregiver")
    )
    st.stop()

requested = _requested(st.query_params.get("resident"), set(choices))
if requested is False:
    st.error(t("app.resident.not_visible"))
    st.page_link(
        "app_pages/overview.py", label=t("app.resident.back"), icon=":material/arrow_back:"
    )
    st.stop()
if isinstance(requested, int) and st.session_state.get(CHOICE_KEY) != requested:
    st.session_state[CHOICE_KEY] = requested
elif st.session_state.get(CHOICE_KEY) not in choices:
    st.session_state[CHOICE_KEY] = _in_trouble(set(choices)) or next(iter(choices))
resident_id = st.selectbox(
    t("app.resident.choose"),
    options=list(choices),
    format_func=lambda rid: _choice_label(choices, rid),
    key=CHOICE_KEY,
    on_change=_sync_query_param,
)

try:
    with db_session() as session:
        profile = resident_profile(session, viewer, resident_id)
    timezone = profile.timezone
    st.header(md_escape(profile.name))
    details = t(
        "app.resident.profile",
        room=profile.room or t("app.common.none"),
        site=profile.site_name,
        start=f"{profile.active_start:%H:%M}",
        end=f"{profile.active_end:%H:%M}",
    )
    if profile.birth_year:
        details += " · " + t("app.resident.born", year=profile.birth_year)
    st.caption(md_escape(details))
    st.caption(t("app.common.site_time", timezone=timezone))
    resident_banner(viewer, resident_id)
    day_tab, vitals_tab, sleep_tab, notes_tab = st.tabs(
        [
            t("app.resident.tab_day"),
            t("app.resident.tab_vitals"),
            t("app.resident.tab_sleep"),
            t("app.resident.tab_notes"),
        ]
    )
    with day_tab:
        day_section(resident_id, timezone)
    with vitals_tab:
        vitals_section(resident_id, timezone)
    with sleep_tab:
        sleep_section(resident_id)
    with notes_tab:
        notes_section(profile, resident_id, timezone)
    resident_silences(viewer, resident_id, timezone)
except IotCareError as error:  # e.g. the assignment was removed since the list was made
    show_error(error)
