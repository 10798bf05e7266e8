"""The audit log for operators and admins: filtered, paged, and as CSV.

Times come back UTC-aware; `core.access.viewer_timezone` names the zone to show them in (the
viewer's site, else the configured default), and `audit_csv` writes them in that zone with its
name in the header, so a download reads the same as the page.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from core.access import Permission, Viewer, require
from core.errors import IotCareError
from core.timeutil import ensure_utc, to_local
from models import AuditEntry

ENTRY_COLUMNS = ["id", "at", "actor", "action", "target_type", "target_id", "details"]
PAGE_SIZE = 50
CSV_MAX_ROWS = 100_000


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log is narrowed to; None means any. Times are [start, end), UTC-aware."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    """One page of matching entries, newest first, and how many match in all."""

    entries: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the matching entries fill (at least one)."""
        return max(1, -(-self.total // self.page_size))


def readable_details(details: dict[str, Any] | None) -> str:
    """Details as 'key: value; key: value' (nested values as compact JSON), empty for none."""
    if not details:
        return ""
    parts = []
    for key, value in details.items():
        if value is None or value == "":
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {text}")
    return "; ".join(parts)


def _conditions(flt: AuditFilter) -> list[ColumnElement[bool]]:
    if flt.start and flt.end and ensure_utc(flt.start) >= ensure_utc(flt.end):
        raise IotCareError(
            "The start of the time range must be before its end.", key="errors.audit.range"
        )
    where: list[ColumnElement[bool]] = []
    if flt.actor:
        where.append(AuditEntry.actor_name == flt.actor)
    if flt.action:
        where.append(AuditEntry.action == flt.action)
    if flt.target_type:
        where.append(AuditEntry.target_type == flt.target_type)
    if flt.target_id and flt.target_id.strip():
        where.append(AuditEntry.target_id == flt.target_id.strip())
    if flt.start:
        where.append(AuditEntry.at >= ensure_utc(flt.start))
    if flt.end:
        where.append(AuditEntry.at < ensure_utc(flt.end))
    return where


def _query(flt: AuditFilter) -> Select[tuple[AuditEntry]]:
    return (
        select(AuditEntry)
        .where(*_conditions(flt))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )


def _frame(rows: list[AuditEntry]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": row.id,
                "at": row.at,
                "actor": row.actor_name,
                "action": row.action,
                "target_type": row.target_type,
                "target_id": row.target_id,
                "details": dict(row.details or {}),
            }
            for row in rows
        ],
        columns=ENTRY_COLUMNS,
    )


def audit_entries(
    session: Session,
    viewer: Viewer,
    flt: AuditFilter | None = None,
    *,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> AuditPage:
    """One page (1-based) of the entries matching the filter, newest first, with the total."""
    require(viewer, Permission.VIEW_AUDIT)
    flt = flt or AuditFilter()
    total = int(
        session.scalar(select(func.count()).select_from(AuditEntry).where(*_conditions(flt))) or 0
    )
    page_size = max(1, page_size)
    last = max(1, -(-total // page_size))
    page = min(max(1, page), last)
    rows = session.scalars(_query(flt).offset((page - 1) * page_size).limit(page_size)).all()
    return AuditPage(_frame(list(rows)), total, page, page_size)


@dataclass(frozen=True)
class AuditChoices:
    """The values the filters offer: every actor, action and target type in the log."""

    actors: list[str]
    actions: list[str]
    target_types: list[str]


def audit_choices(session: Session, viewer: Viewer) -> AuditChoices:
    """The distinct actors, actions and target types in the log, sorted."""
    require(viewer, Permission.VIEW_AUDIT)

    def distinct(column: Any) -> list[str]:
        return sorted(v for v in session.scalars(select(column).distinct()) if v)

    return AuditChoices(
        distinct(AuditEntry.actor_name),
        distinct(AuditEntry.action),
        distinct(AuditEntry.target_type),
    )


def audit_csv(session: Session, viewer: Viewer, flt: AuditFilter | None, timezone: str) -> str:
    """Every matching entry (up to CSV_MAX_ROWS) as CSV, times in `timezone`, newest first."""
    require(viewer, Permission.VIEW_AUDIT)
    rows = session.scalars(_query(flt or AuditFilter()).limit(CSV_MAX_ROWS)).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", f"at ({timezone})", "actor", "action", "target_type", "target_id", "details"]
    )
    for row in rows:
        writer.writerow(
            [
                row.id,
                to_local(row.at, timezone).isoformat(timespec="seconds"),
                row.actor_name,
                row.action,
                row.target_type or "",
                row.target_id or "",
                json.dumps(row.details or {}, ensure_ascii=False, sort_keys=True),
            ]
        )
    return out.getvalue()
