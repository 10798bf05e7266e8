"""Audit log: who did what and when, filtered by actor, action, target and time; paged; CSV."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from core.access import Permission, viewer_timezone
from core.errors import IotCareError
from core.i18n import catalogue, translator
from core.timeutil import to_local, utcnow
from core.use_cases.audit import (
    AuditFilter,
    audit_choices,
    audit_csv,
    audit_entries,
    readable_details,
)
from dashboards.components.i18n import language
from dashboards.components.page import require_page, show_error
from dashboards.components.timefmt import local_time
from dashboards.context import app_context, db_session

PAGE_KEY = "audit.page_input"
DEFAULT_DAYS = 30

viewer = require_page(Permission.VIEW_AUDIT)
# Bound to the language now: format_func callbacks may run outside the script run.
LANG = language()
t = translator(LANG)
st.title(t("app.nav.audit"))


def action_label(action: str) -> str:
    """The action in words when the catalogue knows it, else its code."""
    return catalogue(LANG).get(f"app.audit.actions.{action}") or action


def target_label(kind: str | None) -> str:
    """The target type in words when the catalogue knows it, else as stored."""
    if not kind:
        return t("app.common.none")
    return catalogue(LANG).get(f"app.audit.targets.{kind}") or kind


with db_session() as session:
    zone = viewer_timezone(session, viewer, app_context().settings.default_timezone)
    choices = audit_choices(session, viewer)
st.caption(t("app.common.site_time", timezone=zone))

today = to_local(utcnow(), zone).date()
with st.form("audit_filter"):
    left, right = st.columns(2)
    actor = left.selectbox(
        t("app.audit.actor"),
        options=[None, *choices.actors],
        format_func=lambda v: t("app.common.all") if v is None else v,
        key="audit.actor",
    )
    action = right.selectbox(
        t("app.audit.action"),
        options=[None, *choices.actions],
        format_func=lambda v: t("app.common.all") if v is None else action_label(v),
        key="audit.action",
    )
    target_type = left.selectbox(
        t("app.audit.target_type"),
        options=[None, *choices.target_types],
        format_func=lambda v: t("app.common.all") if v is None else target_label(v),
        key="audit.target_type",
    )
    target_id = right.text_input(
        t("app.audit.target_id"), key="audit.target_id", help=t("app.audit.target_id_help")
    )
    start_day: date = left.date_input(
        t("app.audit.from"), value=today - timedelta(days=DEFAULT_DAYS), key="audit.from"
    )
    end_day: date = right.date_input(t("app.audit.to"), value=today, key="audit.to")
    applied = st.form_submit_button(t("app.audit.apply"), type="primary", key="audit.apply")
if applied:
    st.session_state[PAGE_KEY] = 1  # new filters start on the first page

tz = ZoneInfo(zone)
flt = AuditFilter(
    actor=actor,
    action=action,
    target_type=target_type,
    target_id=target_id or None,
    start=datetime.combine(start_day, time(0), tz) if start_day else None,
    end=datetime.combine(end_day + timedelta(days=1), time(0), tz) if end_day else None,
)

try:
    with db_session() as session:
        page = audit_entries(session, viewer, flt, page=int(st.session_state.get(PAGE_KEY, 1)))
except IotCareError as error:
    show_error(error)
    st.stop()

if page.total == 0:
    st.info(t("app.audit.empty"))
    st.stop()

first = (page.page - 1) * page.page_size + 1
last = first + len(page.entries) - 1
st.caption(t("app.audit.showing", first=first, last=last, total=page.total))

frame = page.entries
table = pd.DataFrame(
    {
        t("app.audit.col.at"): [local_time(v, zone) for v in frame["at"]],
        t("app.audit.col.actor"): frame["actor"],
        t("app.audit.col.action"): [action_label(a) for a in frame["action"]],
        t("app.audit.col.target"): [
            target_label(k) + (f" {i}" if i else "")
            for k, i in zip(frame["target_type"], frame["target_id"], strict=True)
        ],
        t("app.audit.col.details"): [readable_details(d) for d in frame["details"]],
    }
)
st.dataframe(table, hide_index=True, width="stretch")

if page.pages > 1:
    # The widget owns the page number; it is set (clamped) before the widget is drawn.
    st.session_state[PAGE_KEY] = page.page
    st.number_input(
        t("app.audit.page", pages=page.pages),
        min_value=1,
        max_value=page.pages,
        step=1,
        key=PAGE_KEY,
    )

st.subheader(t("app.audit.details_title"))
entries = {int(row.id): row for row in frame.itertuples()}
picked = st.selectbox(
    t("app.audit.pick_entry"),
    options=list(entries),
    format_func=lambda i: (
        t(
            "app.audit.entry_label",
            at=local_time(entries[i].at, zone),
            actor=entries[i].actor,
            action=action_label(entries[i].action),
        )
        if i in entries
        else str(i)
    ),
    key="audit.entry",
)
if picked in entries:
    entry = entries[picked]
    st.markdown(
        t(
            "app.audit.entry_summary",
            at=local_time(entry.at, zone),
            zone=zone,
            actor=entry.actor,
            action=action_label(entry.action),
            code=entry.action,
            target=target_label(entry.target_type),
            target_id=entry.target_id or t("app.common.none"),
        )
    )
    if entry.details:
        st.json(entry.details)
    else:
        st.caption(t("app.audit.no_details"))

with db_session() as session:
    data = audit_csv(session, viewer, flt, zone)
st.download_button(
    t("app.audit.download"),
    data=data.encode("utf-8"),
    file_name=f"audit-{today.isoformat()}.csv",
    mime="text/csv",
    key="audit.download",
    on_click="ignore",
)
st.caption(t("app.audit.download_help", total=page.total, timezone=zone))
