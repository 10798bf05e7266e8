"""Readings and rollups of a resident or a device over a time range, a page at a time.

Integrations export long ranges (a week of a wearable at 10 s is 180,000 readings), so reads are
paged by key (keyset), never by offset: a page starts right after the last row of the previous
one, in primary-key order, so every page costs one short index range scan however deep it is,
and rows written meanwhile neither shift nor repeat earlier pages.

A caregiver reads only the devices of the residents assigned to them and the site-level devices
of the sites they work at (see core.access); any other device or resident raises AccessDenied,
the same as one that does not exist.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, tuple_
from sqlalchemy.orm import Session

from core.access import AccessDenied, Viewer, check_resident, resident_clause, site_clause
from core.errors import IotCareError
from core.timeutil import ensure_utc
from models import Device, Reading, Rollup, RollupPeriod

DEFAULT_PAGE = 500
MAX_PAGE = 10_000

READING_COLUMNS = ("device_id", "metric", "ts", "value")
ROLLUP_COLUMNS = ("device_id", "metric", "period", "bucket", "count", "min", "max", "mean", "p95")


class RangeError(IotCareError):
    """A time range, cursor or page size a range read cannot use."""


@dataclass(frozen=True)
class Page:
    """One page of rows (dicts keyed by the columns) and the cursor of the next, if any."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    next_cursor: str | None


def device_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause on Device limiting it to the devices the viewer sees (see module doc)."""
    return or_(
        and_(Device.resident_id.is_not(None), resident_clause(viewer, Device.resident_id)),
        and_(Device.resident_id.is_(None), site_clause(viewer, Device.site_id)),
    )


def check_device(session: Session, viewer: Viewer, device_id: str) -> Device:
    """The device, if the viewer may see it; AccessDenied otherwise (also when missing)."""
    device = session.scalar(select(Device).where(Device.id == device_id, device_clause(viewer)))
    if device is None:
        raise AccessDenied(
            f"'{viewer.username}' may not see device {device_id}.", key="errors.access_denied"
        )
    return device


def subject_devices(
    session: Session, viewer: Viewer, *, resident_id: int | None, device_id: str | None
) -> list[str]:
    """Ids (sorted) of the devices a range read covers: one device, or a resident's devices."""
    if (resident_id is None) == (device_id is None):
        raise RangeError("Name either a resident or a device.", key="errors.readings.one_subject")
    if device_id is not None:
        return [check_device(session, viewer, device_id).id]
    check_resident(session, viewer, resident_id)  # type: ignore[arg-type]
    return sorted(session.scalars(select(Device.id).where(Device.resident_id == resident_id)))


def check_range(start: datetime, end: datetime, limit: int) -> tuple[datetime, datetime]:
    """The range in UTC (an end at or before the start is an empty range, not an error);
    RangeError when the page size is out of bounds."""
    if not 1 <= limit <= MAX_PAGE:
        raise RangeError(
            f"A page holds 1 to {MAX_PAGE} rows.", key="errors.readings.page_size", most=MAX_PAGE
        )
    return ensure_utc(start), ensure_utc(end)


# A cursor is "<device id>.<time, epoch microseconds>.<metric>", the key of a page's last row:
# device ids and metrics hold no dot, so every string of this shape is a cursor.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}\.[0-9]{1,16}\.[A-Za-z0-9_]{1,32}$"
_CURSOR_RE = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(device_id: str, at: datetime, metric: str) -> str:
    """The cursor of the key (device, time, metric)."""
    micros = (ensure_utc(at) - _EPOCH) // timedelta(microseconds=1)
    return f"{device_id}.{micros}.{metric}"


def decode_cursor(cursor: str) -> list[Any]:
    """The key [device, time, metric] a cursor holds; RangeError if it is not a cursor."""
    if not _CURSOR_RE.match(cursor):
        raise RangeError(
            "This page cursor is not valid: start again from the first page.",
            key="errors.readings.bad_cursor",
        )
    device_id, micros, metric = cursor.split(".")
    return [device_id, _EPOCH + timedelta(microseconds=int(micros)), metric]


def _page(
    session: Session,
    devices: list[str],
    after: list[Any] | None,
    limit: int,
    query_of: Any,
) -> tuple[list[Any], bool]:
    """Rows in key order from the device after `after` on, device by device, up to `limit` + 1.

    One query per device keeps each one a single ordered range scan of the primary key (an IN
    list of devices would make the database merge or sort them).
    """
    rows: list[Any] = []
    for device in devices:
        if after is not None and device < after[0]:
            continue
        rest = after[1:] if after is not None and device == after[0] else None
        rows.extend(session.execute(query_of(device, rest).limit(limit + 1 - len(rows))).all())
        if len(rows) > limit:
            return rows[:limit], True
    return rows, False


def readings_page(
    session: Session,
    viewer: Viewer,
    *,
    start: datetime,
    end: datetime,
    resident_id: int | None = None,
    device_id: str | None = None,
    metrics: Iterable[str] = (),
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> Page:
    """Raw readings of a resident's devices (or one device) in [start, end), in key order."""
    start, end = check_range(start, end, limit)
    devices = subject_devices(session, viewer, resident_id=resident_id, device_id=device_id)
    wanted = sorted(set(metrics))
    after = decode_cursor(cursor) if cursor else None

    def query_of(device: str, rest: list[Any] | None) -> Any:
        query = (
            select(Reading.device_id, Reading.metric, Reading.ts, Reading.value)
            .where(Reading.device_id == device, Reading.ts >= start, Reading.ts < end)
            .order_by(Reading.ts, Reading.metric)
        )
        if wanted:
            query = query.where(Reading.metric.in_(wanted))
        if rest is not None:
            query = query.where(tuple_(Reading.ts, Reading.metric) > tuple_(rest[0], rest[1]))
        return query

    rows, more = _page(session, devices, after, limit, query_of)
    shaped = [
        {"device_id": d, "metric": m, "ts": ensure_utc(ts), "value": v} for d, m, ts, v in rows
    ]
    last = shaped[-1] if more else None
    return Page(
        READING_COLUMNS,
        shaped,
        encode_cursor(last["device_id"], last["ts"], last["metric"]) if last else None,
    )


def rollups_page(
    session: Session,
    viewer: Viewer,
    *,
    start: datetime,
    end: datetime,
    period: RollupPeriod = RollupPeriod.HOUR,
    resident_id: int | None = None,
    device_id: str | None = None,
    metrics: Iterable[str] = (),
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> Page:
    """Rollups (hour or day buckets) starting in [start, end), by device, metric, bucket."""
    start, end = check_range(start, end, limit)
    period = RollupPeriod(period)
    devices = subject_devices(session, viewer, resident_id=resident_id, device_id=device_id)
    wanted = sorted(set(metrics))
    after = decode_cursor(cursor) if cursor else None

    def query_of(device: str, rest: list[Any] | None) -> Any:
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
                Rollup.device_id == device,
                Rollup.period == period,
                Rollup.bucket >= start,
                Rollup.bucket < end,
            )
            .order_by(Rollup.metric, Rollup.bucket)
        )
        if wanted:
            query = query.where(Rollup.metric.in_(wanted))
        if rest is not None:
            query = query.where(tuple_(Rollup.metric, Rollup.bucket) > tuple_(rest[1], rest[0]))
        return query

    rows, more = _page(session, devices, after, limit, query_of)
    shaped = [
        {
            "device_id": d,
            "metric": m,
            "period": period.value,
            "bucket": ensure_utc(bucket),
            "count": count,
            "min": low,
            "max": high,
            "mean": mean,
            "p95": p95,
        }
        for d, m, bucket, count, low, high, mean, p95 in rows
    ]
    last = shaped[-1] if more else None
    return Page(
        ROLLUP_COLUMNS,
        shaped,
        encode_cursor(last["device_id"], last["bucket"], last["metric"]) if last else None,
    )


def page_csv(page: Page) -> str:
    """The page as CSV with a header row: times in UTC ISO 8601, missing values empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(page.columns)
    for row in page.rows:
        writer.writerow(
            [
                "" if v is None else v.isoformat() if isinstance(v, datetime) else v
                for v in (row[c] for c in page.columns)
            ]
        )
    return out.getvalue()
