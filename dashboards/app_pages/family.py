"""My family member: a family user's relative, how they are, their alert status and daily reports.

Everything comes from core.use_cases.family.family_members, which shows only the residents linked
to the viewer and leaves out devices, alert details and care notes.
"""

from __future__ import annotations

import streamlit as st

from core.access import Permission
from core.errors import IotCareError
from core.use_cases.family import family_members
from core.use_cases.overview import CareState
from dashboards.components.i18n import t
from dashboards.components.markdown import md_escape
from dashboards.components.page import require_page, show_error
from dashboards.components.timefmt import local_time
from dashboards.context import db_session

viewer = require_page(Permission.VIEW_FAMILY)
st.title(t("app.nav.family"))

try:
    with db_session() as session:
        members = family_members(session, viewer)
except IotCareError as error:
    show_error(error)
    st.stop()

if not members:
    st.info(t("app.family.none"))
    st.stop()

SHOW_STATE = {
    CareState.OK: st.success,
    CareState.ATTENTION: st.warning,
    CareState.CRITICAL: st.error,
}

for member in members:
    heading = md_escape(member.name)
    if member.room:
        heading = t("app.family.heading", name=heading, room=md_escape(member.room))
    st.header(heading)
    SHOW_STATE[member.state](t(f"app.overview.state.{member.state.value}"))
    if member.worst_severity is None:
        st.caption(t("app.family.alerts_none"))
    else:
        st.markdown(
            t(
                "app.family.alerts_count",
                n=member.open_alerts,
                severity=t(f"app.severity.{member.worst_severity.value}"),
            )
        )
        for alert in member.alerts:
            line = t(
                "app.family.alert_line",
                severity=t(f"app.severity.{alert.severity.value}"),
                text=md_escape(alert.text),
                time=local_time(alert.opened_at, member.timezone),
            )
            if alert.acknowledged:
                line += " · " + t("app.family.acknowledged")
            st.markdown(f"- {line}")
    st.subheader(t("app.family.reports"))
    if not member.reports:
        st.caption(t("app.family.no_reports"))
    for index, report in enumerate(member.reports):
        with st.expander(md_escape(report.subject), expanded=index == 0):
            st.text(report.body)
