"""Ingest health: replicas and their connection, message and dead-letter rates, dead letters."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.access import Permission
from core.contract.errors import Reason
from core.i18n import plural
from core.timeutil import utcnow
from core.use_cases import ingest_health as q
from dashboards.components.fleet import label, or_dash, when
from dashboards.components.i18n import t
from dashboards.components.page import require_page
from dashboards.context import app_context, db_session

WINDOW_MINUTES = 15
CHART_MINUTES = 60
AUTO_REFRESH = timedelta(seconds=10)


def size(value: float) -> str:
    """Bytes as '0 B', '12.3 KB', '4.5 MB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


viewer = require_page(Permission.VIEW_INGEST)
st.title(t("app.nav.ingest"))
settings = app_context().settings
interval = settings.ingest_heartbeat_interval
stale = q.stale_after(interval)
st.caption(
    t(
        "app.ingest.intro",
        seconds=int(interval.total_seconds()),
        stale=int(stale.total_seconds()),
    )
)
with db_session() as session:
    timezone = q.display_timezone(session, viewer, settings.default_timezone)
st.button(t("app.common.refresh"), key="ingest.refresh")


@st.fragment(run_every=AUTO_REFRESH)
def health() -> None:
    """Headline figures and the replicas; refreshes itself."""
    now = utcnow()
    with db_session() as session:
        summary = q.summary(session, viewer, stale=stale, window_minutes=WINDOW_MINUTES, now=now)
        replicas = q.replicas(session, viewer, stale=stale, now=now)
        rates = q.message_rates(session, viewer, minutes=CHART_MINUTES, now=now)
    st.caption(t("app.common.site_time", timezone=timezone))
    left, middle, right = st.columns(3)
    left.metric(
        t("app.ingest.replicas_up"),
        t("app.ingest.replicas_of", connected=summary.connected, total=summary.replicas),
    )
    middle.metric(
        t("app.ingest.rate"),
        f"{summary.messages_per_minute:.1f}",
        help=t("app.ingest.rate_help", minutes=plural(t, "count.minutes", WINDOW_MINUTES)),
    )
    percent = "—" if summary.dead_letter_rate is None else f"{summary.dead_letter_rate:.1%}"
    right.metric(
        t("app.ingest.dead_rate"),
        t("app.ingest.dead_rate_value", count=summary.dead_letters_window, percent=percent),
        help=t("app.ingest.dead_rate_help", minutes=plural(t, "count.minutes", WINDOW_MINUTES)),
    )
    lag = (
        t("app.ingest.no_lag")
        if summary.max_lag_seconds is None
        else (f"{summary.max_lag_seconds:.2f} s")
    )
    st.caption(
        t(
            "app.ingest.backlog",
            pending=plural(t, "count.messages", summary.pending),
            spool=size(summary.spool_bytes),
            lag=lag,
        )
    )
    if summary.down:
        st.error(plural(t, "app.ingest.down_warning", summary.down))
    disconnected = summary.replicas - summary.connected - summary.down
    if disconnected:
        st.warning(plural(t, "app.ingest.disconnected_warning", disconnected))

    st.subheader(t("app.ingest.replicas"))
    if replicas.empty:
        st.info(t("app.ingest.no_replicas"))
    else:
        st.dataframe(
            replicas.assign(
                state=replicas["state"].map(lambda s: t(f"app.ingest.state.{s}")),
                heartbeat_at=replicas["heartbeat_at"].map(lambda v: when(v, timezone)),
                started_at=replicas["started_at"].map(lambda v: when(v, timezone)),
                spool_bytes=replicas["spool_bytes"].map(size),
                last_error=replicas["last_error"].map(or_dash),
            )[
                [
                    "client_id",
                    "state",
                    "heartbeat_at",
                    "received",
                    "written",
                    "dead_lettered",
                    "pending",
                    "spool_bytes",
                    "lag_seconds",
                    "rate_per_second",
                    "hostname",
                    "started_at",
                    "last_error",
                ]
            ],
            hide_index=True,
            use_container_width=True,
            column_config={
                "client_id": t("app.ingest.column.client_id"),
                "state": t("app.ingest.column.state"),
                "heartbeat_at": t("app.ingest.column.heartbeat"),
                "received": t("app.ingest.column.received"),
                "written": t("app.ingest.column.written"),
                "dead_lettered": t("app.ingest.column.dead_lettered"),
                "pending": t("app.ingest.column.pending"),
                "spool_bytes": t("app.ingest.column.spool"),
                "lag_seconds": st.column_config.NumberColumn(
                    t("app.ingest.column.lag"), format="%.2f"
                ),
                "rate_per_second": st.column_config.NumberColumn(
                    t("app.ingest.column.rate"), format="%.1f"
                ),
                "hostname": t("app.ingest.column.hostname"),
                "started_at": t("app.ingest.column.started"),
                "last_error": t("app.ingest.column.last_error"),
            },
        )

    chart_span = plural(t, "count.minutes", CHART_MINUTES)
    st.subheader(t("app.ingest.rates", minutes=chart_span))
    if not rates[["readings", "events", "dead_letters"]].to_numpy().any():
        st.caption(t("app.ingest.no_traffic", minutes=chart_span))
    else:
        chart = rates.assign(
            minute=rates["minute"].map(lambda v: when(v, timezone).split(" (")[0])
        ).rename(
            columns={
                "readings": t("app.ingest.series_readings"),
                "events": t("app.ingest.series_events"),
                "dead_letters": t("app.ingest.series_dead"),
            }
        )
        st.line_chart(chart.set_index("minute"))


health()

st.subheader(t("app.ingest.reasons"))
with db_session() as session:
    reasons = q.dead_letter_reasons(session, viewer, since=utcnow() - timedelta(hours=24))
if reasons.empty:
    st.caption(t("app.ingest.no_dead"))
else:
    st.dataframe(
        reasons.assign(reason=reasons["reason"].map(lambda r: label("app.ingest.reason", r))),
        hide_index=True,
        use_container_width=True,
        column_config={
            "reason": t("app.ingest.column.reason"),
            "count": t("app.ingest.column.count"),
        },
    )

st.subheader(t("app.ingest.recent"))
chosen = st.selectbox(
    t("app.ingest.reason_filter"),
    options=[None, *(reason.value for reason in Reason)],
    format_func=lambda r: t("app.common.all") if r is None else label("app.ingest.reason", r),
    key="ingest.reason",
)
with db_session() as session:
    dead = q.recent_dead_letters(session, viewer, reason=chosen)
if dead.empty:
    st.info(t("app.ingest.no_dead_reason" if chosen else "app.ingest.no_dead"))
else:
    st.dataframe(
        dead.assign(
            received_at=dead["received_at"].map(lambda v: when(v, timezone)),
            reason=dead["reason"].map(lambda r: label("app.ingest.reason", r)),
            detail=dead["detail"].map(or_dash),
        ),
        hide_index=True,
        use_container_width=True,
        column_config={
            "received_at": t("app.ingest.column.received_at"),
            "topic": t("app.ingest.column.topic"),
            "reason": t("app.ingest.column.reason"),
            "detail": t("app.ingest.column.detail"),
            "payload": t("app.ingest.column.payload"),
            "payload_size": t("app.ingest.column.size"),
        },
    )
