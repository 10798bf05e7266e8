"""Rollups flow: hourly and daily aggregates of raw readings, incremental from watermarks.

Each run plans the windows of each period from its watermark and the lateness margin
(core.rollups.plan_incremental), then aggregates them chunk by chunk; every chunk commits its
rollups and moves the watermark forward in one transaction, so a failed run resumes where it
stopped and re-running anything changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from core import rollups
from core.timeutil import ensure_utc, utcnow
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime
from models import RollupPeriod


@task(
    name="Plan rollup windows",
    task_run_name="plan {period.value} rollups",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def plan_windows(period: RollupPeriod, now: datetime) -> list[rollups.Window]:
    """Read the watermark and return the chunks to aggregate, oldest first."""
    rt = runtime()
    with rt.session() as session:
        watermark = rollups.get_watermark(session, period)
    window = rollups.plan_incremental(period, watermark, now, rt.settings.rollup_lateness)
    chunks = list(window.chunks()) if window else []
    if window is None:
        get_run_logger().info("%s rollups: nothing new since %s", period.value, watermark)
    else:
        get_run_logger().info(
            "%s rollups: %d chunk(s) from %s to %s (watermark was %s)",
            period.value,
            len(chunks),
            window.start.isoformat(),
            window.end.isoformat(),
            watermark.isoformat() if watermark else "unset",
        )
    return chunks


@task(
    name="Summarize the readings time index",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def summarize_time_index() -> int | None:
    """Summarize new page ranges of readings' BRIN index, so the rollups' time scans stay small."""
    with runtime().session() as session:
        return rollups.summarize_time_index(session)


@task(
    name="Aggregate rollups",
    task_run_name="{window.period.value} rollups from {window.start:%Y-%m-%d %H:%M} UTC",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def aggregate(window: rollups.Window) -> int:
    """Aggregate one chunk and advance the watermark, in one transaction; returns rows written."""
    rt = runtime()
    with rt.session() as session:
        rows = rollups.rollup_window(session, window, work_mem=rt.settings.rollup_work_mem)
        rollups.set_watermark(
            session, window.period, window.end, last_run=utcnow().isoformat(), rows=rows
        )
    return rows


@flow(
    name="rollups",
    description="Hourly and daily rollups per device and metric, incremental from watermarks.",
    flow_run_name=run_name("rollups", "now"),
    on_failure=[log_flow_failure],
)
def rollups_flow(now: datetime | None = None) -> dict[str, int]:
    """Aggregate every period's new (and still open to late data) buckets."""
    now = ensure_utc(now or utcnow())
    written: dict[str, int] = {}
    summarize_time_index()
    for period in (RollupPeriod.HOUR, RollupPeriod.DAY):
        chunks = plan_windows(period, now)
        written[period.value] = sum(aggregate(chunk) for chunk in chunks)
    get_run_logger().info("rollup rows written: %s", written)
    return written
