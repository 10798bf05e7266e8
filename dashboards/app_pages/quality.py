"""Data quality: each suite's latest result, what failed (with samples), the trend, Data Docs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from core.access import Permission, viewer_timezone
from core.errors import IotCareError
from core.i18n import catalogue, plural, translator
from core.timeutil import to_local, utcnow
from core.use_cases.quality import data_docs, latest_runs, run_history, run_results
from dashboards.components.i18n import language
from dashboards.components.page import require_page, show_error
from dashboards.components.timefmt import ago, local_time
from dashboards.context import app_context, db_session

TREND_RANGES = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}

viewer = require_page(Permission.VIEW_QUALITY)
# Bound to the language now: format_func callbacks may run outside the script run.
LANG = language()
t = translator(LANG)
st.title(t("app.nav.quality"))
settings = app_context().settings


def suite_label(suite: str) -> str:
    """A suite's name in words when the catalogue knows it, else its code."""
    return catalogue(LANG).get(f"app.quality.suites.{suite}") or suite


def state_label(success: Any) -> str:
    """Passed, failed, or not finished."""
    if success is None or pd.isna(success):
        return t("app.quality.state.unfinished")
    return t("app.quality.state.passed") if bool(success) else t("app.quality.state.failed")


def sample_frame(sample: list[Any]) -> pd.DataFrame:
    """A sample as a table: rows of dicts keep their columns, plain values get one column."""
    if sample and all(isinstance(item, dict) for item in sample):
        return pd.DataFrame(sample)
    return pd.DataFrame({t("app.quality.sample_value"): [str(v) for v in sample]})


with db_session() as session:
    zone = viewer_timezone(session, viewer, settings.default_timezone)
    latest = latest_runs(session, viewer)
st.caption(t("app.common.site_time", timezone=zone))

if latest.empty:
    st.info(t("app.quality.empty"))
    st.stop()

# --- latest result of each suite
st.subheader(t("app.quality.latest"))
failing = latest[latest["success"].eq(False)]
if failing.empty:
    st.success(plural(t, "app.quality.all_passed", len(latest)))
else:
    st.error(
        plural(
            t,
            "app.quality.some_failed",
            len(failing),
            total=plural(t, "count.suites", len(latest)),
            suites=", ".join(suite_label(s) for s in failing["suite"]),
        )
    )
st.dataframe(
    pd.DataFrame(
        {
            t("app.quality.col.suite"): [suite_label(s) for s in latest["suite"]],
            t("app.quality.col.state"): [state_label(s) for s in latest["success"]],
            t("app.quality.col.checks"): [
                t("app.quality.failed_of", failed=f, evaluated=e)
                for f, e in zip(latest["failed"], latest["evaluated"], strict=True)
            ],
            t("app.quality.col.window"): [
                f"{local_time(a, zone)} – {local_time(b, zone, with_date=False)}"
                for a, b in zip(latest["window_start"], latest["window_end"], strict=True)
            ],
            t("app.quality.col.ran"): [
                f"{local_time(v, zone)} ({ago(v)})" for v in latest["started_at"]
            ],
        }
    ),
    hide_index=True,
    width="stretch",
)

# --- one run in detail: failing expectations with samples
st.subheader(t("app.quality.run_title"))
with db_session() as session:
    recent = run_history(session, viewer, limit=200)
recent = recent.iloc[::-1].reset_index(drop=True)  # newest first for the picker
runs = {int(r.run_id): r for r in recent.itertuples()}
default_run = int(failing["run_id"].iloc[0]) if not failing.empty else int(latest["run_id"].iloc[0])
picked = st.selectbox(
    t("app.quality.pick_run"),
    options=list(runs),
    index=list(runs).index(default_run) if default_run in runs else 0,
    format_func=lambda i: (
        t(
            "app.quality.run_label",
            suite=suite_label(runs[i].suite),
            at=local_time(runs[i].started_at, zone),
            state=state_label(runs[i].success),
        )
        if i in runs
        else str(i)
    ),
    key="quality.run",
)
run = runs.get(picked) or runs[default_run if default_run in runs else next(iter(runs))]
picked = int(run.run_id)
try:
    with db_session() as session:
        results = run_results(session, viewer, picked)
except IotCareError as error:
    show_error(error)
    st.stop()

failed_rows = results[results["success"].eq(False)]
st.caption(
    t(
        "app.quality.run_summary",
        window_start=local_time(run.window_start, zone),
        window_end=local_time(run.window_end, zone),
        failed=run.failed,
        evaluated=plural(t, "count.checks", run.evaluated),
    )
)
if failed_rows.empty:
    st.success(t("app.quality.run_passed"))
for row in failed_rows.itertuples():
    counted = (
        t(
            "app.quality.unexpected",
            n=int(row.unexpected_count),
            total=plural(t, "count.values", int(row.element_count)),
        )
        if pd.notna(row.unexpected_count) and pd.notna(row.element_count)
        else t("app.quality.unexpected_unknown")
    )
    with st.expander(t("app.quality.failed_check", check=row.check, counted=counted)):
        if row.description:
            st.markdown(str(row.description))
        if row.column:
            st.caption(t("app.quality.column", column=row.column))
        if row.error:
            st.warning(t("app.quality.check_error", error=row.error))
        if row.sample:
            st.caption(t("app.quality.sample", n=len(row.sample)))
            st.dataframe(sample_frame(row.sample), hide_index=True, width="stretch")
        else:
            st.caption(t("app.quality.no_sample"))
with st.expander(t("app.quality.all_checks", n=len(results))):
    st.dataframe(
        pd.DataFrame(
            {
                t("app.quality.col.check"): results["check"],
                t("app.quality.col.state"): [state_label(s) for s in results["success"]],
                t("app.quality.col.unexpected"): results["unexpected_count"],
                t("app.quality.col.evaluated"): results["element_count"],
            }
        ),
        hide_index=True,
        width="stretch",
    )

# --- Data Docs of the run
st.subheader(t("app.quality.docs_title"))
docs = data_docs(viewer, settings.data_dir, run.data_docs_url)
st.markdown(t("app.quality.docs_where", path=str(docs.directory)))
if docs.page_exists and docs.page is not None:
    st.download_button(
        t("app.quality.docs_page_download"),
        data=docs.page.read_bytes(),
        file_name=f"data-docs-run-{picked}.html",
        mime="text/html",
        key="quality.docs_page",
        on_click="ignore",
    )
if docs.index_exists:
    st.download_button(
        t("app.quality.docs_index_download"),
        data=docs.index.read_bytes(),
        file_name="data-docs-index.html",
        mime="text/html",
        key="quality.docs_index",
        on_click="ignore",
    )
    st.caption(t("app.quality.docs_help"))
else:
    st.info(t("app.quality.docs_missing"))

# --- trend over runs
st.subheader(t("app.quality.trend"))
span = st.radio(
    t("app.quality.trend_range"),
    options=list(TREND_RANGES),
    index=1,
    horizontal=True,
    format_func=lambda k: t(f"app.quality.range.{k}"),
    key="quality.range",
)
since = utcnow() - TREND_RANGES[span or "week"]
with db_session() as session:
    history = run_history(session, viewer, since=since)
if history.empty:
    st.info(t("app.quality.trend_empty"))
else:
    points = pd.DataFrame(
        {
            "at": [to_local(v, zone).replace(tzinfo=None) for v in history["started_at"]],
            "suite": [suite_label(s) for s in history["suite"]],
            "pass_rate": [None if pd.isna(r) else round(100 * r, 1) for r in history["pass_rate"]],
            "failed": history["failed"],
        }
    )
    labels = {
        "at": t("app.quality.axis.time", timezone=zone),
        "suite": t("app.quality.col.suite"),
        "pass_rate": t("app.quality.axis.pass_rate"),
        "failed": t("app.quality.axis.failed"),
    }
    rate = px.line(points, x="at", y="pass_rate", color="suite", markers=True, labels=labels)
    rate.update_yaxes(range=[0, 105])
    rate.update_layout(title=t("app.quality.chart.pass_rate"), legend_title_text="")
    st.plotly_chart(rate, width="stretch", key="quality.chart_rate")
    failed_chart = px.bar(points, x="at", y="failed", color="suite", labels=labels)
    failed_chart.update_layout(title=t("app.quality.chart.failed"), legend_title_text="")
    st.plotly_chart(failed_chart, width="stretch", key="quality.chart_failed")
