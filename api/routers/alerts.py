"""Alerts: list with filters and keyset paging, one alert's story, acknowledge, resolve, comment.

Thin: every call goes through core.use_cases.alerts, so the access rules, the audit log, the
alert history and the notifications are the app's own.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.auth import Acknowledger, Reader, Session_, settings_of
from api.frames import plain
from api.params import MAX_ID, NO_NUL_PATTERN, NOTE_PATTERN, SITE_ID_PATTERN, Timestamp
from api.problems import InvalidRequest
from api.visibility import hidden_as_missing
from core.access import Permission, Viewer
from core.use_cases import alerts as alert_queries
from models import AlertStatus, RuleKind, Severity

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertSummary(BaseModel):
    """An alert as lists show it."""

    id: uuid.UUID
    severity: Severity
    status: AlertStatus
    kind: RuleKind
    title: str = Field(description="The stored title (English, as the rule named it).")
    what: str = Field(description="What was found, in the token user's language.")
    resident_id: int | None
    resident: str | None
    room: str | None
    device_id: str | None
    site_id: str | None
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    escalation_level: int
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class AlertList(BaseModel):
    """One page of alerts, newest opened first."""

    items: list[AlertSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class HistoryEntry(BaseModel):
    """One change of an alert."""

    at: datetime
    action: str = Field(description="opened, repeated, acknowledged, commented, resolved, …")
    actor: str | None
    note: str | None


class AlertDetail(BaseModel):
    """One alert with who, what, its state and its history."""

    id: uuid.UUID
    title: str
    what: str
    kind: RuleKind
    severity: Severity
    status: AlertStatus
    rule_name: str | None
    resident_id: int | None
    resident_name: str | None
    room: str | None
    device_id: str | None
    site_id: str | None
    timezone: str
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    escalation_level: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None
    history: list[HistoryEntry]


class AckBody(BaseModel):
    """Acknowledging: an optional note."""

    note: str | None = Field(None, max_length=alert_queries.NOTE_MAX_CHARS, pattern=NO_NUL_PATTERN)


class NoteBody(BaseModel):
    """Resolving or commenting: what happened (required)."""

    note: str = Field(
        max_length=alert_queries.NOTE_MAX_CHARS,
        pattern=NOTE_PATTERN,
        description="Not blank.",
    )


def _hidden_as_missing(viewer: Viewer) -> AbstractContextManager[None]:
    """An alert someone may handle alerts but not see is 'not found', as for a missing one."""
    return hidden_as_missing(
        viewer, Permission.HANDLE_ALERTS, "No such alert.", "errors.alert_missing"
    )


# A cursor is "<opened_at, epoch microseconds>.<alert id, hex>": every string the pattern
# accepts is a cursor (16 digits reach beyond the year 2200), so the schema says all there is.
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(key: tuple[datetime, uuid.UUID]) -> str:
    """The cursor for the keyset (opened_at, id)."""
    opened, alert_id = key
    micros = (opened.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{alert_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The keyset a cursor names; InvalidRequest (422) for anything else."""
    micros, _, alert_id = cursor.partition(".")
    try:
        return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=alert_id)
    except (ValueError, OverflowError):
        raise InvalidRequest("The cursor is not valid.", key="errors.api.bad_cursor") from None


def _utc(value: datetime | None) -> datetime | None:
    """An aware time in UTC; one beyond what UTC can hold is the earliest or latest there is."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (
            datetime.min.replace(tzinfo=UTC) if value.year < 2 else datetime.max.replace(tzinfo=UTC)
        )


def _detail(
    session: Session_, request: Request, viewer: Viewer, alert_id: uuid.UUID
) -> AlertDetail:
    with _hidden_as_missing(viewer):
        found = alert_queries.alert_detail(
            session,
            viewer,
            alert_id,
            default_timezone=settings_of(request).default_timezone,
        )
    fields = {name: getattr(found, name) for name in AlertDetail.model_fields if name != "history"}
    history = [
        HistoryEntry(**{key: plain(value) for key, value in row.items()})
        for row in found.history.to_dict("records")
    ]
    return AlertDetail(**fields, history=history)


@router.get("", summary="List alerts")
def list_alerts(
    session: Session_,
    token: Reader,
    status: Annotated[list[AlertStatus] | None, Query(description="Any of these states.")] = None,
    severity: Annotated[list[Severity] | None, Query(description="Any of these.")] = None,
    site: Annotated[str | None, Query(pattern=SITE_ID_PATTERN, description="Site id.")] = None,
    resident: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Resident id.")] = None,
    since: Annotated[Timestamp | None, Query(description="Opened at or after.")] = None,
    until: Annotated[Timestamp | None, Query(description="Opened before.")] = None,
    limit: Annotated[
        int, Query(ge=1, description="Page size (at most IOTCARE_API_PAGE_SIZE_MAX).")
    ] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="next_cursor of the page before.")
    ] = None,
    request: Request = None,  # type: ignore[assignment]
) -> AlertList:
    """Alerts the token's user sees, newest opened first; filters combine (all must hold)."""
    page = alert_queries.alert_page(
        session,
        token.viewer,
        alert_queries.AlertFilter(
            statuses=tuple(status or ()),
            severities=tuple(severity or ()),
            site_id=site,
            resident_id=resident,
            since=_utc(since),
            until=_utc(until),
        ),
        after=decode_cursor(cursor) if cursor else None,
        limit=min(limit, settings_of(request).api_page_size_max),
    )
    return AlertList(
        items=[AlertSummary(**{k: plain(v) for k, v in item.items()}) for item in page.items],
        next_cursor=encode_cursor(page.next_after) if page.next_after else None,
    )


@router.get("/{alert_id}", summary="Get an alert")
def get_alert(
    alert_id: uuid.UUID, session: Session_, token: Reader, request: Request
) -> AlertDetail:
    """One alert with its history (404 when missing or not the token user's to see)."""
    return _detail(session, request, token.viewer, alert_id)


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an alert")
def acknowledge(
    alert_id: uuid.UUID,
    session: Session_,
    token: Acknowledger,
    request: Request,
    body: AckBody | None = None,
) -> AlertDetail:
    """Take the alert on: escalation stops (audited; acknowledging twice changes nothing)."""
    with _hidden_as_missing(token.viewer):
        alert_queries.acknowledge_alert(
            session, token.viewer, alert_id, body.note if body else None
        )
    session.commit()
    return _detail(session, request, token.viewer, alert_id)


@router.post("/{alert_id}/resolve", summary="Resolve an alert")
def resolve(
    alert_id: uuid.UUID, body: NoteBody, session: Session_, token: Acknowledger, request: Request
) -> AlertDetail:
    """Close the alert, saying what happened (audited)."""
    with _hidden_as_missing(token.viewer):
        alert_queries.resolve_alert(session, token.viewer, alert_id, body.note)
    session.commit()
    return _detail(session, request, token.viewer, alert_id)


@router.post("/{alert_id}/comments", summary="Comment on an alert", status_code=201)
def comment(
    alert_id: uuid.UUID, body: NoteBody, session: Session_, token: Acknowledger, request: Request
) -> AlertDetail:
    """Add a note to the alert's history without changing its state (audited)."""
    with _hidden_as_missing(token.viewer):
        alert_queries.comment_alert(session, token.viewer, alert_id, body.note)
    session.commit()
    return _detail(session, request, token.viewer, alert_id)
