"""The sidebar's count of what waits for the viewer: open alerts (critical ones in red), inbox."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.access import Permission, Viewer
from core.errors import IotCareError
from core.use_cases.alerts import UnreadCounts, unread_counts
from dashboards.components.i18n import t
from dashboards.components.page import show_error
from dashboards.context import db_session

ALERTS_PAGE = "app_pages/alerts.py"


def unread_lines(counts: UnreadCounts) -> list[str]:
    """'Open alerts: 3 · :red-badge[2 critical]', 'Unread messages: 1' (Markdown)."""
    alerts = t("app.unread.alerts", n=counts.alerts)
    if counts.critical:
        alerts += (
            f" · :red-badge[:material/emergency: {t('app.unread.critical', n=counts.critical)}]"
        )
    return [alerts, t("app.unread.inbox", n=counts.inbox)]


def unread_summary(viewer: Viewer, every: timedelta) -> None:
    """Call inside `with st.sidebar`: the counts, refreshed every `every`, with a link to alerts."""
    if not viewer.can(Permission.HANDLE_ALERTS):
        return

    @st.fragment(run_every=every)
    def unread_box() -> None:
        try:
            with db_session() as session:
                counts = unread_counts(session, viewer)
        except IotCareError as error:
            show_error(error)
            return
        with st.container(border=True):
            st.markdown("  \n".join(unread_lines(counts)))
            st.page_link(
                ALERTS_PAGE, label=t("app.unread.open_alerts"), icon=":material/notifications:"
            )

    unread_box()
