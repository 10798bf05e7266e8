"""Ingest health for operators: replicas and their heartbeats, message and dead-letter rates.

Each ingest replica upserts its row in ingest_replicas every heartbeat interval (ingest/service.py)
with its cumulative counters since start, pending messages, spool backlog, lag and connection.
A row whose heartbeat is older than a few intervals belongs to a replica that is down (killed,
hung, or cut off from the database), whatever its last `connected` said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Integer, cast, func, select
from sqlalchemy.orm import Session

from core.access import Permission, Viewer, require, viewer_timezone
from core.timeutil import utcnow
from models import DeadLetter, Device, Event, IngestReplica, Reading, Site

# A replica is down after missing this many heartbeats.
MISSED_HEARTBEATS = 3
PAYLOAD_PREVIEW = 200
REPLICA_COLUMNS = [
    "client_id",
    "hostname",
    "pid",
    "state",
    "started_at",
    "heartbeat_at",
    "received",
    "written",
    "dead_lettered",
    "pending",
    "spool_bytes",
    "lag_seconds",
    "rate_per_second",
    "last_error",
]
DEAD_LETTER_COLUMNS = ["received_at", "topic", "reason", "detail", "payload", "payload_size"]


class ReplicaState(StrEnum):
    """What an operator needs to know about a replica's connection."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    DOWN = "down"


@dataclass(frozen=True)
class IngestSummary:
    """The headline figures of the ingest page."""

    replicas: int
    connected: int
    down: int
    messages_per_minute: float
    dead_letters_window: int
    dead_letter_rate: float | None
    pending: int
    spool_bytes: int
    max_lag_seconds: float | None
    window_minutes: int


def stale_after(heartbeat_interval: timedelta) -> timedelta:
    """How old a heartbeat may be before its replica counts as down."""
    return heartbeat_interval * MISSED_HEARTBEATS


def display_timezone(session: Session, viewer: Viewer, fallback: str) -> str:
    """The timezone ingest times are shown in: the viewer's site, else the first site's."""
    require(viewer, Permission.VIEW_INGEST)
    own = viewer_timezone(session, viewer, "")
    if own:
        return own
    first = session.scalar(select(Site.timezone).order_by(Site.created_at, Site.id).limit(1))
    return first or fallback


def replica_state(
    connected: bool, heartbeat_at: datetime, now: datetime, stale: timedelta
) -> ReplicaState:
    """Down when the heartbeat is stale, else what the replica last reported."""
    if now - heartbeat_at > stale:
        return ReplicaState.DOWN
    return ReplicaState.CONNECTED if connected else ReplicaState.DISCONNECTED


def replicas(
    session: Session, viewer: Viewer, *, stale: timedelta, now: datetime | None = None
) -> pd.DataFrame:
    """Every replica that ever reported, live ones first, with its average rate since start."""
    require(viewer, Permission.VIEW_INGEST)
    now = now or utcnow()
    rows = []
    for r in session.scalars(select(IngestReplica).order_by(IngestReplica.client_id)):
        uptime = (r.heartbeat_at - r.started_at).total_seconds()
        rows.append(
            (
                r.client_id,
                r.hostname,
                r.pid,
                replica_state(r.connected, r.heartbeat_at, now, stale).value,
                r.started_at,
                r.heartbeat_at,
                r.received,
                r.written,
                r.dead_lettered,
                r.pending,
                r.spool_bytes,
                r.lag_seconds,
                r.received / uptime if uptime > 0 else None,
                r.last_error,
            )
        )
    order = {ReplicaState.CONNECTED: 0, ReplicaState.DISCONNECTED: 1, ReplicaState.DOWN: 2}
    rows.sort(key=lambda row: (order[ReplicaState(row[3])], row[0]))
    return pd.DataFrame(rows, columns=REPLICA_COLUMNS)


def _minute(session: Session, column: Any) -> ColumnElement[int]:
    """Whole minutes since the epoch of a UTC timestamp column, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / 60), Integer)
    return cast(func.strftime("%s", column), Integer) // 60


def _per_minute(session: Session, column: Any, since: datetime, *where: Any) -> dict[int, int]:
    minute = _minute(session, column).label("minute")
    query = select(minute, func.count()).where(column >= since, *where).group_by(minute)
    return {int(m): int(n) for m, n in session.execute(query)}


def message_rates(
    session: Session, viewer: Viewer, *, minutes: int = 60, now: datetime | None = None
) -> pd.DataFrame:
    """Rows stored per minute over the last `minutes`: readings, events and dead letters.

    Readings and events are bucketed by their device timestamp (readings carry no arrival time),
    so a device flushing its offline buffer shows up in the minutes it measured.
    """
    require(viewer, Permission.VIEW_INGEST)
    now = now or utcnow()
    end = int(now.timestamp() // 60)
    start = end - minutes + 1
    since = datetime.fromtimestamp(start * 60, UTC)
    # Through the device ids, so the (device_id, ts, metric) key serves the range, not a scan.
    readings = _per_minute(
        session, Reading.ts, since, Reading.ts <= now, Reading.device_id.in_(select(Device.id))
    )
    events = _per_minute(session, Event.ts, since, Event.ts <= now)
    dead = _per_minute(session, DeadLetter.received_at, since)
    index = range(start, end + 1)
    return pd.DataFrame(
        {
            "minute": [datetime.fromtimestamp(m * 60, UTC) for m in index],
            "readings": [readings.get(m, 0) for m in index],
            "events": [events.get(m, 0) for m in index],
            "dead_letters": [dead.get(m, 0) for m in index],
        }
    )


def dead_letter_reasons(session: Session, viewer: Viewer, *, since: datetime) -> pd.DataFrame:
    """How many dead letters each reason produced since a time, most first."""
    require(viewer, Permission.VIEW_INGEST)
    count = func.count().label("count")
    rows = session.execute(
        select(DeadLetter.reason, count)
        .where(DeadLetter.received_at >= since)
        .group_by(DeadLetter.reason)
        .order_by(count.desc(), DeadLetter.reason)
    ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["reason", "count"])


def recent_dead_letters(
    session: Session, viewer: Viewer, *, limit: int = 50, reason: str | None = None
) -> pd.DataFrame:
    """The latest dead letters, newest first, with a readable preview of the raw payload."""
    require(viewer, Permission.VIEW_INGEST)
    query = select(DeadLetter).order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())
    if reason:
        query = query.where(DeadLetter.reason == reason)
    rows = [
        (
            d.received_at,
            d.topic,
            d.reason,
            d.detail,
            bytes(d.payload[:PAYLOAD_PREVIEW]).decode("utf-8", errors="replace"),
            d.payload_size,
        )
        for d in session.scalars(query.limit(limit))
    ]
    return pd.DataFrame(rows, columns=DEAD_LETTER_COLUMNS)


def summary(
    session: Session,
    viewer: Viewer,
    *,
    stale: timedelta,
    window_minutes: int = 15,
    now: datetime | None = None,
) -> IngestSummary:
    """Replicas up and down, messages per minute and dead-letter rate over the window, backlog."""
    require(viewer, Permission.VIEW_INGEST)
    now = now or utcnow()
    table = replicas(session, viewer, stale=stale, now=now)
    live = table[table["state"] != ReplicaState.DOWN.value]
    rates = message_rates(session, viewer, minutes=window_minutes, now=now)
    stored = int(rates["readings"].sum() + rates["events"].sum())
    dead = int(rates["dead_letters"].sum())
    lags = live["lag_seconds"].dropna()
    return IngestSummary(
        replicas=len(table),
        connected=int((table["state"] == ReplicaState.CONNECTED.value).sum()),
        down=int((table["state"] == ReplicaState.DOWN.value).sum()),
        messages_per_minute=stored / window_minutes,
        dead_letters_window=dead,
        dead_letter_rate=dead / (stored + dead) if stored + dead else None,
        pending=int(live["pending"].sum()),
        spool_bytes=int(live["spool_bytes"].sum()),
        max_lag_seconds=float(lags.max()) if len(lags) else None,
        window_minutes=window_minutes,
    )
