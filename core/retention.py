"""Retention: delete what is older than its configured age, in small batches.

What goes (rollups, alerts, events, care reports and the audit log stay):

readings        ts older than IOTCARE_RETENTION_DAYS. Deleted device by device through the
                primary key (device_id, ts, metric), so every batch is an index range scan and
                never a scan of the whole table; device ids come from a loose index scan of the
                same key, so readings of devices missing from the registry go too.
dead_letters    received_at older than IOTCARE_DEAD_LETTER_RETENTION_DAYS.
notifications   delivered (status sent) with sent_at older than IOTCARE_NOTIFICATION_RETENTION_DAYS.
                Pending, held and dead ones stay: they still need someone.
quality_runs    started_at older than IOTCARE_QUALITY_RETENTION_DAYS (their results go with them),
                and Data Docs validation pages older than that.

Each batch (at most IOTCARE_RETENTION_BATCH_SIZE rows) is its own transaction, so retention
never holds long locks against ingest, and a run interrupted half-way simply resumes next time.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from models import DeadLetter, Notification, NotificationStatus, QualityRun
from models.base import UTCDateTime

log = logging.getLogger(__name__)

# One index probe per device: the smallest device id after the previous one.
_DEVICE_IDS = text(
    """
    WITH RECURSIVE ids(device_id) AS (
        SELECT min(device_id) FROM readings
        UNION ALL
        SELECT (SELECT min(r.device_id) FROM readings r WHERE r.device_id > ids.device_id)
        FROM ids WHERE ids.device_id IS NOT NULL
    )
    SELECT device_id FROM ids WHERE device_id IS NOT NULL
    """
)
# ctid (PostgreSQL) / rowid (SQLite) address the rows found through the index directly.
_DELETE_READINGS = {
    "postgresql": """
        DELETE FROM readings WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM readings WHERE device_id = :device AND ts < :cutoff LIMIT :batch))
    """,
    "sqlite": """
        DELETE FROM readings WHERE rowid IN (
            SELECT rowid FROM readings WHERE device_id = :device AND ts < :cutoff LIMIT :batch)
    """,
}


@dataclass(frozen=True)
class Cutoffs:
    """Everything older than these goes."""

    readings: datetime
    dead_letters: datetime
    notifications: datetime
    quality_runs: datetime

    @classmethod
    def from_settings(cls, settings: Settings, now: datetime | None = None) -> Cutoffs:
        """The configured ages, counted back from now."""
        now = ensure_utc(now or utcnow())
        return cls(
            readings=now - timedelta(days=settings.retention_days),
            dead_letters=now - timedelta(days=settings.dead_letter_retention_days),
            notifications=now - timedelta(days=settings.notification_retention_days),
            quality_runs=now - timedelta(days=settings.quality_retention_days),
        )


Sessions = sessionmaker[Session]


def reading_device_ids(session: Session) -> list[str]:
    """Every device id that has readings (a loose index scan: one probe per device)."""
    return list(session.scalars(_DEVICE_IDS))


def purge_readings(sessions: Sessions, cutoff: datetime, batch_size: int) -> int:
    """Delete readings stamped before `cutoff`, a batch per transaction; returns rows deleted."""
    cutoff = ensure_utc(cutoff)
    with session_scope(sessions) as session:
        devices = reading_device_ids(session)
        dialect = session.get_bind().dialect.name
    statement = text(_DELETE_READINGS.get(dialect, _DELETE_READINGS["sqlite"])).bindparams(
        bindparam("cutoff", type_=UTCDateTime())
    )
    total = 0
    for device in devices:
        while True:
            with session_scope(sessions) as session:
                result = session.execute(
                    statement, {"device": device, "cutoff": cutoff, "batch": batch_size}
                )
                deleted = max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
            total += deleted
            if deleted < batch_size:
                break
    log.info("retention: %d readings before %s deleted", total, cutoff.isoformat())
    return total


def _purge_by_id(
    sessions: Sessions, model: Any, ids: Callable[[int], Select[tuple[int]]], batch_size: int
) -> int:
    # Select a batch of ids, delete exactly those: short transactions, never a table scan lock.
    total = 0
    while True:
        with session_scope(sessions) as session:
            batch = list(session.scalars(ids(batch_size)))
            if batch:
                statement = delete(model).where(model.id.in_(batch))
                session.execute(statement.execution_options(synchronize_session=False))
        total += len(batch)
        if len(batch) < batch_size:
            return total


def purge_dead_letters(sessions: Sessions, cutoff: datetime, batch_size: int) -> int:
    """Delete dead letters received before `cutoff`; returns rows deleted."""
    cutoff = ensure_utc(cutoff)
    total = _purge_by_id(
        sessions,
        DeadLetter,
        lambda n: select(DeadLetter.id).where(DeadLetter.received_at < cutoff).limit(n),
        batch_size,
    )
    log.info("retention: %d dead letters before %s deleted", total, cutoff.isoformat())
    return total


def purge_notifications(sessions: Sessions, cutoff: datetime, batch_size: int) -> int:
    """Delete delivered notifications sent before `cutoff`; returns rows deleted."""
    cutoff = ensure_utc(cutoff)
    total = _purge_by_id(
        sessions,
        Notification,
        lambda n: (
            select(Notification.id)
            .where(Notification.status == NotificationStatus.SENT, Notification.sent_at < cutoff)
            .limit(n)
        ),
        batch_size,
    )
    log.info("retention: %d delivered notifications before %s deleted", total, cutoff.isoformat())
    return total


def purge_quality_runs(sessions: Sessions, cutoff: datetime, batch_size: int) -> int:
    """Delete data-quality runs (and their results, by cascade) started before `cutoff`."""
    cutoff = ensure_utc(cutoff)
    total = _purge_by_id(
        sessions,
        QualityRun,
        lambda n: select(QualityRun.id).where(QualityRun.started_at < cutoff).limit(n),
        batch_size,
    )
    log.info("retention: %d quality runs before %s deleted", total, cutoff.isoformat())
    return total


def _run_dirs(docs: Path) -> Iterator[tuple[Path, datetime]]:
    # Data Docs keep one page per validation under validations/<suite>/<run name>/<run time>/.
    for run_dir in docs.glob("validations/*/*/*"):
        try:
            stamp = datetime.strptime(run_dir.name, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            continue
        yield run_dir, stamp


def purge_data_docs(docs: Path, cutoff: datetime) -> int:
    """Delete Data Docs validation pages of runs before `cutoff`; returns directories removed."""
    cutoff = ensure_utc(cutoff)
    removed = 0
    if not docs.exists():
        return 0
    for run_dir, stamp in list(_run_dirs(docs)):
        if stamp < cutoff:
            shutil.rmtree(run_dir, ignore_errors=True)
            removed += 1
    return removed
