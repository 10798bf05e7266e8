"""Notifications: the outbox with its status counts, delivery failures, and retrying dead ones."""

from __future__ import annotations

import streamlit as st

from core.access import Permission, viewer_timezone
from core.errors import IotCareError
from core.i18n import plural
from core.use_cases.notifications import list_notifications, retry_dead, status_counts
from dashboards.components.alert_views import (
    channel_text,
    delivery_status_text,
    outbox_table,
    purpose_text,
    show_table,
)
from dashboards.components.i18n import t
from dashboards.components.page import require_page, show_error
from dashboards.context import app_context, db_session
from models import Channel, NotificationPurpose, NotificationStatus

LIMIT = 200
NOTICES = "notifications.notices"
# Counts in the order an operator reads them: waiting, then done, then the trouble.
COUNT_ORDER = (
    NotificationStatus.PENDING,
    NotificationStatus.HELD,
    NotificationStatus.SENDING,
    NotificationStatus.SENT,
    NotificationStatus.DEAD,
    NotificationStatus.CANCELLED,
)

viewer = require_page(Permission.MANAGE_NOTIFICATIONS)
st.title(t("app.nav.notifications"))
for level, message in st.session_state.pop(NOTICES, []):
    (st.success if level == "success" else st.warning)(message)
st.caption(t("app.notifications.intro"))

with db_session() as session:
    timezone = viewer_timezone(session, viewer, app_context().settings.default_timezone)
    counts = status_counts(session, viewer)

for row in (COUNT_ORDER[:3], COUNT_ORDER[3:]):
    for column, status in zip(st.columns(3), row, strict=True):
        column.metric(delivery_status_text(status.value), counts[status])

left, middle, right = st.columns(3)
statuses = left.multiselect(
    t("app.notifications.status"),
    options=[s.value for s in COUNT_ORDER],
    format_func=delivery_status_text,
    placeholder=t("app.common.all"),
    key="notifications.statuses",
)
channels = middle.multiselect(
    t("app.notifications.channel"),
    options=[c.value for c in Channel],
    format_func=channel_text,
    placeholder=t("app.common.all"),
    key="notifications.channels",
)
purposes = right.multiselect(
    t("app.notifications.purpose"),
    options=[p.value for p in NotificationPurpose],
    format_func=purpose_text,
    placeholder=t("app.common.all"),
    key="notifications.purposes",
)

with db_session() as session:
    rows = list_notifications(
        session, viewer, statuses or None, channels or None, purposes or None, limit=LIMIT
    )
    dead = list_notifications(session, viewer, [NotificationStatus.DEAD], limit=LIMIT)

if rows.empty:
    filtered = bool(statuses or channels or purposes)
    st.info(t("app.notifications.empty_filtered" if filtered else "app.notifications.empty_all"))
else:
    show_table(outbox_table(rows, timezone))
    if len(rows) == LIMIT:
        st.caption(t("app.notifications.shown", n=plural(t, "count.notifications", LIMIT)))
    st.caption(t("app.common.site_time", timezone=timezone))

st.subheader(t("app.notifications.retry.title"))
st.caption(t("app.notifications.retry.help"))
if dead.empty:
    st.info(t("app.notifications.retry.none_dead"))
    st.stop()

labels = {
    int(row.id): t(
        "app.notifications.retry.option",
        id=int(row.id),
        channel=channel_text(row.channel),
        recipient=row.recipient or "—",
        error=(row.last_error or t("app.notifications.retry.no_error"))[:80],
    )
    for row in dead.itertuples(index=False)
}
with st.form("notifications.retry"):
    chosen = st.multiselect(
        t("app.notifications.retry.choose"),
        options=list(labels),
        format_func=labels.__getitem__,
        key="notifications.retry_ids",
    )
    submitted = st.form_submit_button(
        t("app.notifications.retry.submit"), type="primary", key="notifications.retry_submit"
    )
if submitted:
    if not chosen:
        st.error(t("app.notifications.retry.none_selected"))
        st.stop()
    try:
        with db_session() as session:
            result = retry_dead(session, viewer, chosen)
    except IotCareError as error:
        show_error(error)
        st.stop()
    notices: list[tuple[str, str]] = []
    if result.requeued:
        notices.append(("success", t("app.notifications.retry.done", n=len(result.requeued))))
    if result.skipped_resolved:
        notices.append(
            ("warning", t("app.notifications.retry.skipped", n=len(result.skipped_resolved)))
        )
    if not notices:
        notices.append(("warning", t("app.notifications.retry.nothing")))
    st.session_state[NOTICES] = notices
    st.session_state.pop("notifications.retry_ids", None)
    st.rerun()
