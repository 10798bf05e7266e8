"""Plotly figures of a resident: their day as a timeline, vital signs, sleep and activity.

Pure functions of the query results and a translator (no Streamlit calls), so the benchmark can
time the figure building on its own. Times are drawn in the resident's local time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.contract.catalogue import METRICS
from core.use_cases.resident import DayTimeline, VitalsSeries

Translate = Callable[..., str]
SEVERITY_COLORS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
EVENT_COLOR = "#7f7f7f"
STAY_COLOR = "#2ca02c"
LINE_COLORS = ("#1f77b4", "#9467bd", "#17becf")
_LAYOUT: dict[str, Any] = {"margin": {"l": 10, "r": 10, "t": 30, "b": 10}, "hovermode": "closest"}


def local(series: pd.Series, timezone: str) -> pd.Series:
    """UTC timestamps as naive local wall-clock times (plotly draws what it is given)."""
    return pd.to_datetime(series, utc=True).dt.tz_convert(timezone).dt.tz_localize(None)


# Plotly's tick spacing in milliseconds from which an axis labels days rather than times.
_DAY_MS = 86_400_000


def date_axis(t: Translate) -> dict[str, Any]:
    """A date axis labelled in the reader's language ('12월 6일', not 'Dec 6')."""
    return {
        "type": "date",
        "tickformatstops": [
            {"dtickrange": [None, _DAY_MS], "value": t("app.resident.chart.tick_time")},
            {"dtickrange": [_DAY_MS, None], "value": t("app.resident.chart.tick_day")},
        ],
        "hoverformat": t("app.resident.chart.hover"),
    }


def timeline_figure(
    timeline: DayTimeline, t: Translate, describe: Callable[[pd.Series], str]
) -> go.Figure:
    """Stays in rooms as bars, events and alerts as markers, over the local day."""
    tz = timeline.timezone
    figure = go.Figure()
    stays = timeline.stays
    if not stays.empty:
        starts, ends = local(stays["start"], tz), local(stays["end"], tz)
        # A single reading is a moment; draw it one minute wide so it can be seen.
        widths = ((ends - starts).dt.total_seconds() * 1000).clip(lower=60_000)
        figure.add_trace(
            go.Bar(
                base=starts,
                x=widths,
                y=[t("app.resident.day.row_room", room=room) for room in stays["room"]],
                orientation="h",
                marker_color=STAY_COLOR,
                hovertext=[
                    t(
                        "app.resident.day.stay",
                        room=room,
                        start=f"{start:%H:%M}",
                        end=f"{end:%H:%M}",
                    )
                    for room, start, end in zip(stays["room"], starts, ends, strict=True)
                ],
                hoverinfo="text",
                showlegend=False,
            )
        )
    items = timeline.items
    for kind, row_key in (("event", "row_events"), ("alert", "row_alerts")):
        chosen = items[items["kind"] == kind]
        if chosen.empty:
            continue
        colors = (
            [SEVERITY_COLORS.get(s, EVENT_COLOR) for s in chosen["severity"]]
            if kind == "alert"
            else EVENT_COLOR
        )
        figure.add_trace(
            go.Scatter(
                x=local(chosen["ts"], tz),
                y=[t(f"app.resident.day.{row_key}")] * len(chosen),
                mode="markers",
                marker={"size": 12, "color": colors, "symbol": "diamond"},
                hovertext=[describe(row) for _, row in chosen.iterrows()],
                hoverinfo="text+x",
                showlegend=False,
            )
        )
    start = pd.Timestamp(timeline.start).tz_convert(tz).tz_localize(None)
    end = pd.Timestamp(timeline.end).tz_convert(tz).tz_localize(None)
    figure.update_layout(
        **_LAYOUT,
        height=140 + 40 * max(1, len(figure.data)),
        xaxis={
            **date_axis(t),
            "range": [start, end],
            "title": t("app.resident.day.axis", timezone=tz),
        },
        barmode="overlay",
    )
    return figure


def vitals_figure(
    series: VitalsSeries, timezone: str, t: Translate, metric_name: Translate
) -> go.Figure:
    """One panel per vital sign sharing the time axis; hourly data with a min-max band."""
    frame = series.frame
    metrics = [m for m in dict.fromkeys(frame["metric"])]
    figure = make_subplots(
        rows=max(1, len(metrics)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[_axis_title(m, metric_name) for m in metrics],
    )
    traces: list[go.Scatter] = []
    rows: list[int] = []
    for row, metric in enumerate(metrics, start=1):
        for index, (device_type, part) in enumerate(
            frame[frame["metric"] == metric].groupby("device_type", sort=True, dropna=False)
        ):
            color = LINE_COLORS[index % len(LINE_COLORS)]
            x = local(part["ts"], timezone)
            device = t(f"app.overview.device_types.{device_type or 'unknown'}")
            if series.resolution == "hour":
                traces.append(
                    go.Scatter(
                        x=pd.concat([x, x[::-1]]),
                        y=pd.concat([part["high"], part["low"][::-1]]),
                        fill="toself",
                        fillcolor=color,
                        opacity=0.2,
                        line={"width": 0},
                        hoverinfo="skip",
                        name=t(
                            "app.resident.vitals.band", metric=metric_name(metric), device=device
                        ),
                        showlegend=False,
                    )
                )
                rows.append(row)
            traces.append(
                go.Scatter(
                    x=x,
                    y=part["value"],
                    mode="lines",
                    line={"color": color, "width": 1.5},
                    name=t("app.resident.vitals.line", metric=metric_name(metric), device=device),
                )
            )
            rows.append(row)
    # One call: adding traces one by one re-validates the figure each time.
    figure.add_traces(traces, rows=rows, cols=[1] * len(rows))
    figure.update_layout(**_LAYOUT, height=220 * max(1, len(metrics)), legend={"orientation": "h"})
    figure.update_xaxes(**date_axis(t))
    return figure


def _axis_title(metric: str, metric_name: Translate) -> str:
    unit = METRICS[metric].unit if metric in METRICS else ""
    return f"{metric_name(metric)} ({unit})" if unit and unit != "bool" else metric_name(metric)


def reports_figure(reports: pd.DataFrame, t: Translate) -> go.Figure:
    """Hours in bed per night and active hours per day, oldest day on the left."""
    ordered = reports.sort_values("day")
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=ordered["day"],
            y=(ordered["in_bed_minutes"].astype(float) / 60).round(1),
            name=t("app.resident.sleep.in_bed_hours"),
        )
    )
    figure.add_trace(
        go.Bar(x=ordered["day"], y=ordered["active_hours"], name=t("app.resident.sleep.active"))
    )
    figure.update_layout(
        **_LAYOUT,
        height=300,
        barmode="group",
        legend={"orientation": "h"},
        xaxis={**date_axis(t), "title": t("app.resident.sleep.day")},
    )
    return figure
