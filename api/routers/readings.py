"""Readings and rollups of a resident or a device over a time range: paged, JSON or CSV.

Thin: core.use_cases.readings checks access (a caregiver's token reads only their residents'
devices and their sites' site-level devices) and pages by key. CSV comes with `Accept: text/csv`
or `?format=csv`; its next page is in the `X-Next-Cursor` header and a `Link: <…>; rel="next"`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import Reader, Session_, settings_of
from api.ids import DeviceId, ResidentId
from api.params import Timestamp
from api.visibility import hidden_as_missing
from core.access import Permission, Viewer
from core.use_cases import readings as q
from models import RollupPeriod

router = APIRouter(tags=["readings"])

CSV_MEDIA_TYPE = "text/csv"
METRIC_PATTERN = r"^[A-Za-z0-9_]{1,32}$"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The page as JSON, or as CSV with `Accept: text/csv` or `?format=csv` "
        "(header row; the next page's cursor in `X-Next-Cursor` and a `Link` rel=next header).",
        "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


class ReadingItem(BaseModel):
    """One stored value (booleans such as motion or door_open are 0 or 1)."""

    device_id: str
    metric: str
    ts: datetime
    value: float


class ReadingPage(BaseModel):
    """One page of readings, by device, then time, then metric."""

    items: list[ReadingItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RollupItem(BaseModel):
    """The aggregate of one device's metric over one hour or day (bucket: its start, UTC)."""

    device_id: str
    metric: str
    period: RollupPeriod
    bucket: datetime
    count: int
    min: float
    max: float
    mean: float
    p95: float | None = Field(description="Null where the database computes no percentile.")


class RollupPage(BaseModel):
    """One page of rollups, by device, then metric, then bucket."""

    items: list[RollupItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


Start = Annotated[Timestamp, Query(description="From this time (inclusive, with a zone).")]
End = Annotated[Timestamp, Query(description="Up to this time (exclusive, with a zone).")]
Metric = Annotated[str, Field(pattern=METRIC_PATTERN)]
Metrics = Annotated[
    list[Metric] | None,
    Query(
        max_length=20,
        description="Only these metrics (repeat the parameter); default all.",
    ),
]
Limit = Annotated[int, Query(ge=1, description="Page size (at most IOTCARE_API_PAGE_SIZE_MAX).")]
Cursor = Annotated[str | None, Query(pattern=q.CURSOR_PATTERN, description="From next_cursor.")]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="csv: the page as CSV (as with Accept: text/csv)."),
]
Period = Annotated[RollupPeriod, Query(description="Hourly or daily buckets.")]


def wants_csv(request: Request, format: str | None) -> bool:
    """CSV when asked by ?format=csv, or by an Accept header naming text/csv before JSON."""
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return CSV_MEDIA_TYPE in accept and "application/json" not in accept


def _csv(request: Request, page: q.Page) -> Response:
    headers = {}
    if page.next_cursor:
        url = request.url.include_query_params(cursor=page.next_cursor)
        headers = {"X-Next-Cursor": page.next_cursor, "Link": f'<{url}>; rel="next"'}
    return Response(
        q.page_csv(page), media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8", headers=headers
    )


def _read(
    request: Request,
    viewer: Viewer,
    *,
    resident_id: int | None,
    device_id: str | None,
    read: Callable[..., q.Page],
    limit: int,
    **kwargs: Any,
) -> q.Page:
    """The page `read` returns, a subject the viewer may not see reported as missing."""
    if resident_id is not None:
        hidden = hidden_as_missing(
            viewer,
            Permission.VIEW_RESIDENTS,
            f"No resident {resident_id}.",
            "errors.care.resident_missing",
        )
    else:
        hidden = hidden_as_missing(
            viewer,
            Permission.VIEW_RESIDENTS,
            f"No device '{device_id}'.",
            "errors.care.device_missing",
            device=device_id,
        )
    with hidden:
        return read(
            resident_id=resident_id,
            device_id=device_id,
            limit=min(limit, settings_of(request).api_page_size_max),
            **kwargs,
        )


def _readings(
    request: Request,
    session: Session_,
    viewer: Viewer,
    subject: dict[str, Any],
    start: datetime,
    end: datetime,
    metric: list[str] | None,
    limit: int,
    cursor: str | None,
    format: str | None,
) -> ReadingPage | Response:
    page = _read(
        request,
        viewer,
        **subject,
        read=lambda **kw: q.readings_page(session, viewer, **kw),
        start=start,
        end=end,
        metrics=metric or (),
        cursor=cursor,
        limit=limit,
    )
    if wants_csv(request, format):
        return _csv(request, page)
    return ReadingPage(
        items=[ReadingItem(**row) for row in page.rows], next_cursor=page.next_cursor
    )


def _rollups(
    request: Request,
    session: Session_,
    viewer: Viewer,
    subject: dict[str, Any],
    start: datetime,
    end: datetime,
    period: RollupPeriod,
    metric: list[str] | None,
    limit: int,
    cursor: str | None,
    format: str | None,
) -> RollupPage | Response:
    page = _read(
        request,
        viewer,
        **subject,
        read=lambda **kw: q.rollups_page(session, viewer, **kw),
        start=start,
        end=end,
        period=period,
        metrics=metric or (),
        cursor=cursor,
        limit=limit,
    )
    if wants_csv(request, format):
        return _csv(request, page)
    return RollupPage(items=[RollupItem(**row) for row in page.rows], next_cursor=page.next_cursor)


@router.get(
    "/residents/{resident_id}/readings",
    summary="A resident's readings over a time range",
    response_model=ReadingPage,
    responses=CSV_RESPONSE,
)
def resident_readings(
    resident_id: ResidentId,
    start: Start,
    end: End,
    request: Request,
    session: Session_,
    token: Reader,
    metric: Metrics = None,
    limit: Limit = q.DEFAULT_PAGE,
    cursor: Cursor = None,
    format: Format = None,
) -> ReadingPage | Response:
    """Raw readings of every device of the resident in [start, end)."""
    subject = {"resident_id": resident_id, "device_id": None}
    return _readings(
        request, session, token.viewer, subject, start, end, metric, limit, cursor, format
    )


@router.get(
    "/devices/{device_id}/readings",
    summary="A device's readings over a time range",
    response_model=ReadingPage,
    responses=CSV_RESPONSE,
)
def device_readings(
    device_id: DeviceId,
    start: Start,
    end: End,
    request: Request,
    session: Session_,
    token: Reader,
    metric: Metrics = None,
    limit: Limit = q.DEFAULT_PAGE,
    cursor: Cursor = None,
    format: Format = None,
) -> ReadingPage | Response:
    """Raw readings of one device in [start, end)."""
    subject = {"resident_id": None, "device_id": device_id}
    return _readings(
        request, session, token.viewer, subject, start, end, metric, limit, cursor, format
    )


@router.get(
    "/residents/{resident_id}/rollups",
    summary="A resident's hourly or daily rollups over a time range",
    response_model=RollupPage,
    responses=CSV_RESPONSE,
)
def resident_rollups(
    resident_id: ResidentId,
    start: Start,
    end: End,
    request: Request,
    session: Session_,
    token: Reader,
    period: Period = RollupPeriod.HOUR,
    metric: Metrics = None,
    limit: Limit = q.DEFAULT_PAGE,
    cursor: Cursor = None,
    format: Format = None,
) -> RollupPage | Response:
    """count/min/max/mean/p95 per device, metric and bucket starting in [start, end)."""
    subject = {"resident_id": resident_id, "device_id": None}
    return _rollups(
        request, session, token.viewer, subject, start, end, period, metric, limit, cursor, format
    )


@router.get(
    "/devices/{device_id}/rollups",
    summary="A device's hourly or daily rollups over a time range",
    response_model=RollupPage,
    responses=CSV_RESPONSE,
)
def device_rollups(
    device_id: DeviceId,
    start: Start,
    end: End,
    request: Request,
    session: Session_,
    token: Reader,
    period: Period = RollupPeriod.HOUR,
    metric: Metrics = None,
    limit: Limit = q.DEFAULT_PAGE,
    cursor: Cursor = None,
    format: Format = None,
) -> RollupPage | Response:
    """count/min/max/mean/p95 per metric and bucket starting in [start, end)."""
    subject = {"resident_id": None, "device_id": device_id}
    return _rollups(
        request, session, token.viewer, subject, start, end, period, metric, limit, cursor, format
    )
