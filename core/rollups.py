"""Hourly and daily rollups of raw readings: count, min, max, mean and p95 per device and metric.

The database aggregates. PostgreSQL runs one INSERT ... SELECT ... GROUP BY
date_trunc(<period>, ts, 'UTC') with percentile_cont(0.95); SQLite runs the same statement with
strftime() buckets and a p95 aggregate written in Python (registered on the connection), so both
backends store the same linear-interpolation p95 (pandas' default quantile). Buckets are UTC
hours and UTC days. Rows are upserted (ON CONFLICT DO UPDATE, and only when a figure changed), so
re-running any window is idempotent, and rollups outlive the raw readings retention deletes.

Incremental runs. Readings carry no arrival time, so a late reading (a device flushing its
offline buffer, an ingest replica catching up) cannot be found by "what arrived since last
time". Instead each period keeps a watermark (job_watermarks: "rollups.hour", "rollups.day") and
a lateness margin L (IOTCARE_ROLLUP_LATENESS):

* hour: every run re-aggregates each closed hour that ended less than L before the current hour,
  plus every hour since the watermark (so missed runs are caught up). A reading that arrives up
  to L after its hour closed is in that hour's rollup after the next run.
* day: a UTC day is aggregated (from raw readings, for an exact p95) once it closed more than L
  ago, i.e. once; the watermark remembers which days are done.

Readings arriving later than L are only counted after `iotcare rollups backfill` over their
dates (which recomputes any range, independent of the watermarks).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.timeutil import ensure_utc, utcnow
from models import JobWatermark, Rollup, RollupPeriod
from models.base import UTCDateTime

log = logging.getLogger(__name__)

PERIOD_LENGTH = {RollupPeriod.HOUR: timedelta(hours=1), RollupPeriod.DAY: timedelta(days=1)}
# SQLite stores datetimes as text in SQLAlchemy's format; buckets must match it byte for byte.
_SQLITE_BUCKET = {
    RollupPeriod.HOUR: "%Y-%m-%d %H:00:00.000000",
    RollupPeriod.DAY: "%Y-%m-%d 00:00:00.000000",
}
# Largest window one statement aggregates; longer ranges are cut so each transaction stays short.
MAX_CHUNK = {RollupPeriod.HOUR: timedelta(hours=6), RollupPeriod.DAY: timedelta(days=1)}

_POSTGRES_SQL = """
INSERT INTO rollups (device_id, metric, period, bucket, count, min, max, mean, p95, updated_at)
SELECT device_id, metric, :period, date_trunc(:unit, ts, 'UTC') AS bucket,
       count(*), min(value), max(value), avg(value),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY value), :now
FROM readings
WHERE ts >= :start AND ts < :end
GROUP BY device_id, metric, date_trunc(:unit, ts, 'UTC')
ON CONFLICT (device_id, metric, period, bucket) DO UPDATE SET
    count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, mean = EXCLUDED.mean,
    p95 = EXCLUDED.p95, updated_at = EXCLUDED.updated_at
WHERE (rollups.count, rollups.min, rollups.max, rollups.mean, rollups.p95)
      IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.min, EXCLUDED.max, EXCLUDED.mean, EXCLUDED.p95)
"""

_SQLITE_SQL = """
INSERT INTO rollups (device_id, metric, period, bucket, count, min, max, mean, p95, updated_at)
SELECT device_id, metric, :period, strftime(:fmt, ts) AS bucket,
       count(*), min(value), max(value), avg(value), iotcare_p95(value), :now
FROM readings
WHERE ts >= :start AND ts < :end
GROUP BY device_id, metric, strftime(:fmt, ts)
ON CONFLICT (device_id, metric, period, bucket) DO UPDATE SET
    count = excluded.count, min = excluded.min, max = excluded.max, mean = excluded.mean,
    p95 = excluded.p95, updated_at = excluded.updated_at
WHERE rollups.count IS NOT excluded.count OR rollups.min IS NOT excluded.min
      OR rollups.max IS NOT excluded.max OR rollups.mean IS NOT excluded.mean
      OR rollups.p95 IS NOT excluded.p95
"""


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end) of whole buckets of one period."""

    period: RollupPeriod
    start: datetime
    end: datetime

    def chunks(self) -> Iterator[Window]:
        """The window cut into pieces of at most MAX_CHUNK, oldest first."""
        step = MAX_CHUNK[self.period]
        cursor = self.start
        while cursor < self.end:
            stop = min(cursor + step, self.end)
            yield Window(self.period, cursor, stop)
            cursor = stop

    @property
    def buckets(self) -> int:
        """How many buckets the window spans."""
        return int((self.end - self.start) / PERIOD_LENGTH[self.period])


def floor_bucket(value: datetime, period: RollupPeriod) -> datetime:
    """The start of the UTC hour or UTC day containing `value`."""
    value = ensure_utc(value)
    if period is RollupPeriod.HOUR:
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_bucket(value: datetime, period: RollupPeriod) -> datetime:
    """The first bucket start at or after `value`."""
    floor = floor_bucket(value, period)
    return floor if floor == ensure_utc(value) else floor + PERIOD_LENGTH[period]


def watermark_job(period: RollupPeriod) -> str:
    """The job_watermarks key of a period's incremental rollup."""
    return f"rollups.{period.value}"


def plan_incremental(
    period: RollupPeriod, watermark: datetime | None, now: datetime, lateness: timedelta
) -> Window | None:
    """The window the next incremental run must aggregate (None: nothing new); see module doc."""
    now = ensure_utc(now)
    length = PERIOD_LENGTH[period]
    if period is RollupPeriod.HOUR:
        end = floor_bucket(now, period)
        reopen = floor_bucket(end - lateness, period) - length
        start = reopen if watermark is None else min(floor_bucket(watermark, period), reopen)
    else:
        end = floor_bucket(now - lateness, period)
        start = end - length if watermark is None else floor_bucket(watermark, period)
    return Window(period, start, end) if start < end else None


def _p95_class() -> type:
    class P95:
        """SQLite aggregate: the 0.95 quantile with linear interpolation (percentile_cont)."""

        def __init__(self) -> None:
            self.values: list[float] = []

        def step(self, value: float | None) -> None:
            if value is not None:
                self.values.append(float(value))

        def finalize(self) -> float | None:
            return percentile(self.values, 0.95)

    return P95


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile with linear interpolation between closest ranks (PostgreSQL's)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _register_sqlite_functions(session: Session) -> None:
    # Per connection, idempotent: the pool may hand out a connection that never had it.
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    dbapi.create_aggregate("iotcare_p95", 1, _p95_class())  # type: ignore[attr-defined]


def summarize_time_index(session: Session) -> int | None:
    """PostgreSQL: summarize the page ranges of readings' BRIN index that are not yet summarized.

    Unsummarized ranges match every time range, so until they are summarized a time-range read
    scans them all. Autovacuum does it (the index has autosummarize on), unless autovacuum is off
    or behind; the rollups call this first so their scans stay small either way. It reads only
    the pages written since the last summary. Returns how many ranges it summarized; None on
    other backends, or when it could not (logged; the rollup then simply scans more).
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    try:
        with session.begin_nested():
            summarized = session.scalar(
                text("SELECT brin_summarize_new_values('ix_readings_ts_brin'::regclass)")
            )
    except DBAPIError as error:
        log.warning("readings' time index not summarized: %s", error.orig)
        return None
    log.debug("readings' time index: %s new page range(s) summarized", summarized)
    return int(summarized or 0)


def rollup_window(session: Session, window: Window, *, work_mem: str | None = None) -> int:
    """Aggregate readings in the window into rollups (upsert); returns the rows written."""
    if window.start >= window.end:
        return 0
    now = utcnow()
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {
        "period": window.period.value,
        "start": window.start,
        "end": window.end,
        "now": now,
    }
    if dialect == "postgresql":
        if work_mem:
            # SET LOCAL lasts until the end of the caller's transaction only.
            session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
        sql = _POSTGRES_SQL
        params["unit"] = window.period.value
    else:
        _register_sqlite_functions(session)
        sql = _SQLITE_SQL
        params["fmt"] = _SQLITE_BUCKET[window.period]
    statement = text(sql).bindparams(
        bindparam("start", type_=UTCDateTime()),
        bindparam("end", type_=UTCDateTime()),
        bindparam("now", type_=UTCDateTime()),
    )
    result = session.execute(statement, params)
    written = max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    log.debug(
        "rolled up %s %s..%s: %d rows written",
        window.period.value,
        window.start.isoformat(),
        window.end.isoformat(),
        written,
    )
    return written


def get_watermark(session: Session, period: RollupPeriod) -> datetime | None:
    """Where the incremental rollup of a period has got to."""
    row = session.get(JobWatermark, watermark_job(period))
    return row.watermark if row else None


def set_watermark(session: Session, period: RollupPeriod, value: datetime, **details: Any) -> None:
    """Record progress; never moves a watermark backwards (a late re-run is harmless)."""
    job = watermark_job(period)
    row = session.get(JobWatermark, job, with_for_update=True)
    if row is None:
        session.add(JobWatermark(job=job, watermark=value, details=details))
    else:
        row.watermark = max(row.watermark, value)
        row.details = {**(row.details or {}), **details}
    session.flush()


@dataclass(frozen=True)
class RollupRun:
    """What one incremental run of a period did."""

    period: RollupPeriod
    window: Window | None
    rows: int


def run_incremental(
    session: Session,
    period: RollupPeriod,
    *,
    lateness: timedelta,
    now: datetime | None = None,
    work_mem: str | None = None,
) -> RollupRun:
    """Plan, aggregate and advance the watermark of one period in the caller's transaction."""
    now = ensure_utc(now or utcnow())
    window = plan_incremental(period, get_watermark(session, period), now, lateness)
    if window is None:
        return RollupRun(period, None, 0)
    rows = sum(rollup_window(session, chunk, work_mem=work_mem) for chunk in window.chunks())
    set_watermark(session, period, window.end, last_run=now.isoformat(), rows=rows)
    return RollupRun(period, window, rows)


def backfill_windows(start: datetime, end: datetime, period: RollupPeriod) -> list[Window]:
    """The bucket-aligned windows covering [start, end) (widened to whole buckets), in chunks."""
    first = floor_bucket(start, period)
    last = ceil_bucket(end, period)
    return list(Window(period, first, last).chunks())


def load_rollups(
    session: Session,
    *,
    period: RollupPeriod,
    start: datetime,
    end: datetime,
    metric: str | None = None,
    device_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rollups of [start, end) as a DataFrame (bucket as UTC datetimes), for pages and notebooks."""
    query = (
        select(
            Rollup.device_id,
            Rollup.metric,
            Rollup.bucket,
            Rollup.count,
            Rollup.min,
            Rollup.max,
            Rollup.mean,
            Rollup.p95,
        )
        .where(
            Rollup.period == period,
            Rollup.bucket >= ensure_utc(start),
            Rollup.bucket < ensure_utc(end),
        )
        .order_by(Rollup.device_id, Rollup.metric, Rollup.bucket)
    )
    if metric is not None:
        query = query.where(Rollup.metric == metric)
    if device_ids is not None:
        query = query.where(Rollup.device_id.in_(list(device_ids)))
    rows = session.execute(query).all()
    frame = pd.DataFrame(
        rows, columns=["device_id", "metric", "bucket", "count", "min", "max", "mean", "p95"]
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame
