"""Alerts needing attention by severity and age; look at one, acknowledge, resolve, reopen.

Caregivers see and act on the alerts of their assigned residents and of the sites they work at
(a gas leak in the kitchen), never another resident's (core.use_cases.alerts); operators and admins
see all. `?alert=<id>` opens one alert directly (links from other pages). The inbox, counts and
list refresh themselves every IOTCARE_APP_REFRESH (a fragment); the chosen alert's detail and its
forms sit outside it, so a refresh never loses a note being typed.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.access import Permission, viewer_timezone
from core.alerts.titles import title_text
from core.errors import IotCareError
from core.timeutil import utcnow
from core.use_cases.alerts import (
    UNRESOLVED,
    acknowledge_alert,
    alert_counts,
    alert_detail,
    inbox,
    inbox_unread,
    list_alerts,
    mark_inbox_read,
    reopen_alert,
    resolve_alert,
)
from dashboards.components.alert_views import (
    ago_text,
    alert_notifications_table,
    alerts_table,
    history_table,
    severity_badge,
    severity_text,
    show_table,
    time_text,
    who_text,
)
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash, require_page, run_action, show_error, show_flashes
from dashboards.components.timefmt import local_time
from dashboards.context import app_context, db_session
from models import AlertStatus, Severity

SELECTED = "alerts.selected"
# An alert opened by link or just acted on stays on screen even when the filter hides it.
PINNED = "alerts.pinned"
# The alert whose detail and forms this page showed last: a refresh never takes it away (nor a
# half-typed note), even when someone else resolves it meanwhile.
SHOWN = "alerts.shown"
# True while the whole page runs; False during the list's own timed or widget reruns.
FULL_RUN = "alerts.full_run"
FILTERS = ("unresolved", "open", "acknowledged", "resolved", "all")

viewer = require_page(Permission.HANDLE_ALERTS)
lang = language()
settings = app_context().settings
default_timezone = settings.default_timezone
refresh = settings.app_refresh
st.title(t("app.nav.alerts"))
show_flashes()
st.caption(t("app.alerts.intro_all" if viewer.sees_all_residents else "app.alerts.intro"))

linked = st.query_params.get("alert")
if linked:
    del st.query_params["alert"]
    st.session_state[PINNED] = st.session_state[SELECTED] = linked
st.session_state[SHOWN] = st.session_state.get(SELECTED)

with db_session() as session:
    timezone = viewer_timezone(session, viewer, default_timezone)


def _label(severity: str, what: str, who: str, opened_at: object) -> str:
    return t(
        "app.alerts.choose_label",
        severity=severity_text(severity),
        what=what,
        who=who,
        age=ago_text(opened_at),
    )


def _inbox() -> None:
    """The signed-in person's own inbox: messages the platform sent them in the app."""
    with db_session() as session:
        unread = inbox(session, viewer, unread_only=True, limit=20)
        unread_count = inbox_unread(session, viewer)
    with st.expander(t("app.alerts.inbox.title", n=unread_count), expanded=not unread.empty):
        if unread.empty:
            st.caption(t("app.alerts.inbox.empty"))
            return
        show_table(
            pd.DataFrame(
                {
                    t("app.alerts.inbox.when"): [time_text(v, timezone) for v in unread.created_at],
                    t("app.alerts.inbox.subject"): unread.subject.fillna("").tolist(),
                }
            )
        )
        if st.button(t("app.alerts.inbox.mark_all"), key="alerts.inbox.mark_all"):
            with db_session() as session:
                marked = mark_inbox_read(session, viewer)  # all, also beyond those listed
            flash(t("app.alerts.inbox.marked", n=marked))
            st.rerun()


@st.fragment(run_every=refresh)
def live_list() -> None:
    """Inbox, counts, filters, the list and the choice of alert; reruns every app_refresh.

    The detail and its forms are outside: a refresh never clears a note being written.
    """
    _inbox()
    with db_session() as session:
        counts = alert_counts(session, viewer)
    left, middle, right = st.columns(3)
    left.metric(t("app.alerts.metric_open"), counts.open)
    middle.metric(t("app.alerts.metric_acknowledged"), counts.acknowledged)
    right.metric(t("app.alerts.metric_critical"), counts.critical_unresolved)

    shown = st.radio(
        t("app.alerts.show"),
        options=FILTERS,
        format_func=lambda name: (
            {
                "unresolved": t("app.alerts.unresolved"),
                "all": t("app.common.all"),
            }.get(name)
            or t(f"app.alert_status.{name}")
        ),
        horizontal=True,
        key="alerts.filter",
    )
    severities = st.multiselect(
        t("app.alerts.severity"),
        options=[s.value for s in Severity],
        default=[s.value for s in Severity],
        format_func=severity_text,
        key="alerts.severities",
    )
    statuses = {
        "unresolved": UNRESOLVED,
        "open": (AlertStatus.OPEN,),
        "acknowledged": (AlertStatus.ACKNOWLEDGED,),
        "resolved": (AlertStatus.RESOLVED,),
        "all": None,
    }[shown]
    with db_session() as session:
        alerts = list_alerts(session, viewer, statuses, severities or None, language=lang)
    if alerts.empty:
        st.info(
            t(
                "app.alerts.empty_unresolved"
                if shown == "unresolved"
                else "app.alerts.empty_filtered"
            )
        )
    else:
        show_table(alerts_table(alerts, timezone))
        st.caption(t("app.common.site_time", timezone=timezone))
    st.caption(
        t(
            "app.alerts.updated",
            time=local_time(utcnow(), timezone, with_date=False),
            seconds=int(refresh.total_seconds()),
        )
    )

    labels = {
        row.id: _label(
            row.severity, row.what, who_text(row.resident, row.room, row.device_id), row.opened_at
        )
        for row in alerts.itertuples(index=False)
    }
    options = list(labels)
    pinned = st.session_state.get(PINNED)
    for kept in dict.fromkeys((pinned, st.session_state.get(SHOWN))):
        if kept is None or kept in labels:
            continue
        try:
            with db_session() as session:
                detail = alert_detail(session, viewer, kept, lang, default_timezone)
        except IotCareError as error:
            if kept == pinned:
                show_error(error)  # a link to an alert that is not theirs, or is gone
                st.session_state.pop(PINNED, None)
            continue
        labels[kept] = _label(
            detail.severity.value,
            detail.what,
            who_text(detail.resident_name, detail.room, detail.device_id),
            detail.opened_at,
        )
        options.insert(0, kept)
    if st.session_state.get(SELECTED) not in options:
        st.session_state[SELECTED] = options[0] if options else None
    if options:
        st.selectbox(
            t("app.alerts.choose"), options=options, format_func=labels.__getitem__, key=SELECTED
        )
    chosen = st.session_state.get(SELECTED)
    if not st.session_state.get(FULL_RUN) and chosen != st.session_state.get(SHOWN):
        st.rerun()  # another alert chosen (or none left): the detail below must follow


st.session_state[FULL_RUN] = True
try:
    live_list()
finally:
    st.session_state[FULL_RUN] = False
selected = st.session_state.get(SELECTED)
if selected is None:
    st.stop()
st.session_state[SHOWN] = selected
try:
    with db_session() as session:
        detail = alert_detail(session, viewer, selected, lang, default_timezone)
except IotCareError as error:
    show_error(error)
    st.stop()
assert detail is not None
alert_id = str(detail.id)
tz = detail.timezone

st.subheader(md_escape(detail.what))
st.markdown(f"{severity_badge(detail.severity.value)} · {t(f'app.alert_status.{detail.status}')}")
info, actions = st.columns([3, 2])
with info:
    who = who_text(detail.resident_name, detail.room, detail.device_id)
    lines = [
        t("app.alerts.detail.who", who=who),
        t("app.alerts.detail.kind", kind=t(f"app.alerts.kind.{detail.kind.value}")),
    ]
    if detail.rule_name:
        lines.append(t("app.alerts.detail.rule", rule=title_text(detail.rule_name, language())))
    title = title_text(detail.title, language())
    if title != detail.what:
        lines.append(t("app.alerts.detail.title", title=title))
    if detail.device_id and detail.resident_name:
        lines.append(t("app.alerts.detail.device", device=detail.device_id))
    lines += [
        t(
            "app.alerts.detail.opened",
            time=time_text(detail.opened_at, tz),
            ago=ago_text(detail.opened_at),
        ),
        t("app.alerts.detail.last_seen", time=time_text(detail.last_seen_at, tz)),
        t("app.alerts.detail.occurrences", n=detail.occurrences),
        t("app.alerts.detail.escalation", level=detail.escalation_level),
    ]
    if detail.acknowledged_at is not None:
        name = detail.acknowledged_by or t("app.alerts.detail.former_user")
        at = time_text(detail.acknowledged_at, tz)
        lines.append(
            t("app.alerts.detail.acknowledged_note", name=name, time=at, note=detail.ack_note)
            if detail.ack_note
            else t("app.alerts.detail.acknowledged", name=name, time=at)
        )
    if detail.resolved_at is not None:
        at = time_text(detail.resolved_at, tz)
        if detail.resolved_by is None:  # the rule saw the condition clear
            lines.append(t("app.alerts.detail.auto_resolved", time=at))
        else:
            name = detail.resolved_by
            lines.append(
                t("app.alerts.detail.resolved_note", name=name, time=at, note=detail.resolve_note)
                if detail.resolve_note
                else t("app.alerts.detail.resolved", name=name, time=at)
            )
    # Names, titles and notes come from people and devices: shown literally, never as Markdown.
    st.markdown("  \n".join(md_escape(line) for line in lines))
    st.caption(t("app.common.site_time", timezone=tz))


def act(action: str, note: str) -> None:
    """Run one lifecycle action through the access-checked query layer, then show the outcome."""
    functions = {"ack": acknowledge_alert, "resolve": resolve_alert, "reopen": reopen_alert}
    done = t(f"app.alerts.{action}.done", what=md_escape(detail.what))
    ok, _ = run_action(viewer, done, functions[action], alert_id, note)
    if ok:
        st.session_state[PINNED] = alert_id
        st.rerun()


with actions:
    if detail.status is AlertStatus.OPEN:
        with st.form(f"alerts.ack.{alert_id}", clear_on_submit=True):
            st.markdown(f"**{t('app.alerts.ack.title')}**")
            st.caption(t("app.alerts.ack.help"))
            note = st.text_area(t("app.alerts.ack.note"), key=f"alerts.ack_note.{alert_id}")
            if st.form_submit_button(
                t("app.alerts.ack.submit"), type="primary", key=f"alerts.ack_submit.{alert_id}"
            ):
                act("ack", note)
    if detail.status is not AlertStatus.RESOLVED:
        with st.form(f"alerts.resolve.{alert_id}"):
            st.markdown(f"**{t('app.alerts.resolve.title')}**")
            st.caption(t("app.alerts.resolve.help"))
            note = st.text_area(t("app.alerts.resolve.note"), key=f"alerts.resolve_note.{alert_id}")
            if st.form_submit_button(
                t("app.alerts.resolve.submit"), key=f"alerts.resolve_submit.{alert_id}"
            ):
                act("resolve", note)
    elif detail.can_reopen:
        with st.form(f"alerts.reopen.{alert_id}", clear_on_submit=True):
            st.markdown(f"**{t('app.alerts.reopen.title')}**")
            st.caption(t("app.alerts.reopen.help"))
            note = st.text_area(t("app.alerts.reopen.note"), key=f"alerts.reopen_note.{alert_id}")
            if st.form_submit_button(
                t("app.alerts.reopen.submit"), key=f"alerts.reopen_submit.{alert_id}"
            ):
                act("reopen", note)
    else:
        st.info(t("app.alerts.reopen.newer_open"))

history_tab, sent_tab = st.tabs([t("app.alerts.history.title"), t("app.alerts.sent.title")])
with history_tab:
    if detail.history.empty:
        st.caption(t("app.alerts.history.empty"))
    else:
        show_table(history_table(detail.history, tz))
with sent_tab:
    if detail.notifications.empty:
        st.caption(t("app.alerts.sent.empty"))
    else:
        show_table(alert_notifications_table(detail.notifications, tz))
