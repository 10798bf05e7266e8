"""The system of record: one transaction per batch, bulk and idempotent, never row by row."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import session_info
from core.rules.instant import AfterCommit, InstantRules, NoInstantRules, StoredEvent
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from ingest.batch import Batch, ReadingRow
from ingest.registry_cache import KnownDevice, RegistryCache
from models import (
    BlockedDevice,
    Command,
    CommandStatus,
    DeadLetter,
    Device,
    DeviceStatus,
    DeviceStatusChange,
    Event,
    Site,
    StatusChangeReason,
)

log = logging.getLogger(__name__)

# last_seen is written at most this often per device: it is for "is it alive", not a log.
LAST_SEEN_GRANULARITY = timedelta(seconds=15)
# A status received this long before the device's last_seen is old data (a history seeded
# behind live data): it joins the status history but does not overwrite the live status. The
# margin absorbs clock differences between ingest replicas.
STATUS_SKEW = timedelta(seconds=30)

# The arrays are sent as array literals built here, and timestamps as exact integer microseconds
# since the epoch: letting psycopg2 adapt 4 lists element by element cost about 11 ms per 1,000
# messages (3,000 rows) of GIL-held time in the flusher, against about 4 ms this way.
_PG_READINGS = (
    "INSERT INTO readings (device_id, metric, ts, value) "
    "SELECT d, m, timestamptz 'epoch' + t * interval '1 microsecond', v "
    "FROM unnest(%s::varchar[], %s::varchar[], %s::int8[], %s::float8[]) AS u(d, m, t, v) "
    "ON CONFLICT DO NOTHING"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class SqlSink:
    """Writes a batch to PostgreSQL or SQLite; registers unknown devices as quarantined."""

    name = "sql"

    def __init__(
        self,
        engine: Engine,
        cache: RegistryCache,
        default_timezone: str,
        rules: InstantRules | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.engine = engine
        # Carried by the batch's session: alerts the instant rules open queue their
        # notifications with them (none without, as in the offline history replay).
        self.session_info = session_info(settings)
        self.cache = cache
        self.default_timezone = default_timezone
        self.rules: InstantRules = rules or NoInstantRules()
        self._dialect = engine.dialect.name
        self._last_seen_written: dict[str, datetime] = {}

    def write(self, batch: Batch) -> None:
        """Write everything in the batch in one transaction; raise to have it retried."""
        after_commit: AfterCommit | None = None
        with self.engine.connect() as connection:
            self.cache.refresh_if_stale(connection)
            if connection.in_transaction():
                # The refresh's reads began a transaction. A Session bound to a connection already
                # in a transaction only joins it and never commits it, so closing the connection
                # would roll the whole batch back after it was acknowledged: end it here.
                connection.commit()
            # What this batch teaches the registry cache: applied only after the commit, so a
            # rolled-back batch never leaves the cache believing in devices it did not write.
            learned = _Learned()
            with Session(bind=connection, info=self.session_info) as session, session.begin():
                conn = session.connection()
                self._register_unknown(conn, batch, learned)
                if batch.readings:
                    self._insert_readings(conn, batch.readings)
                if batch.dead_letters:
                    conn.execute(
                        insert(DeadLetter),
                        [
                            {
                                "topic": d.topic,
                                "payload": d.payload,
                                "payload_size": d.payload_size,
                                "reason": d.reason,
                                "detail": d.detail,
                                "received_at": d.received_at,
                            }
                            for d in batch.dead_letters
                        ],
                    )
                if batch.statuses:
                    self._update_statuses(conn, batch)
                self._update_last_seen(conn, batch)
                if batch.acks:
                    self._record_command_acks(conn, batch)
                if batch.events:
                    stored = self._insert_events(conn, batch, learned)
                    if stored:
                        after_commit = self.rules.on_events(session, stored)
        if learned.blocked:
            self.cache.block(learned.blocked)
        self.cache.remember_all(learned.devices)
        self._remember_last_seen(batch)
        if after_commit is not None:
            after_commit()

    def backlog_bytes(self) -> int:
        """Writes go straight to the database: no backlog."""
        return 0

    def close(self) -> None:
        """Nothing buffered; the engine belongs to the composition root."""

    # --- registry

    def _register_unknown(self, conn: Connection, batch: Batch, learned: _Learned) -> None:
        unknown = self.cache.unknown(batch.seen)
        if not unknown:
            return
        # Another replica or an operator may have registered them since the cache was loaded.
        for row in conn.execute(
            select(
                Device.id, Device.site_id, Device.resident_id, Device.type, Device.quarantined
            ).where(Device.id.in_(unknown))
        ):
            learned.devices[row.id] = KnownDevice(
                row.site_id, row.resident_id, row.type, row.quarantined
            )
        elsewhere = sorted(d for d, k in learned.devices.items() if k.site_id != batch.seen[d][0])
        if elsewhere:
            # Registered elsewhere since the cache was loaded. Those rows were committed by
            # others, so the cache may learn them now; the pipeline then splits this batch and
            # re-parses it, and the messages become wrong_site dead letters.
            self.cache.remember_all(learned.devices)
            raise WrongSite(f"devices registered at another site than their topic's: {elsewhere}")
        unknown = [d for d in unknown if d not in learned.devices]
        if not unknown:
            return
        # Rejected since this replica's cache was loaded: stay out of the registry. (This batch's
        # rows of such a device are still written; its next messages are dead-lettered.)
        blocked = set(
            conn.scalars(
                select(BlockedDevice.device_id).where(BlockedDevice.device_id.in_(unknown))
            )
        )
        if blocked:
            log.warning("blocked device(s) publishing, not registering them: %s", sorted(blocked))
            learned.blocked |= blocked
            unknown = [d for d in unknown if d not in blocked]
            if not unknown:
                return
        now = utcnow()
        sites = {batch.seen[d][0] for d in unknown if not self.cache.has_site(batch.seen[d][0])}
        if sites:
            existing = set(conn.scalars(select(Site.id).where(Site.id.in_(sites))))
            new_sites = sorted(sites - existing)
            if new_sites:
                log.warning("messages from unregistered sites; registering them: %s", new_sites)
                self._insert_ignore(
                    conn,
                    Site,
                    [
                        {
                            "id": s,
                            "name": f"Unregistered site {s}",
                            "timezone": self.default_timezone,
                            "created_at": now,
                        }
                        for s in new_sites
                    ],
                )
        log.warning(
            "quarantining %d unknown device(s) for an operator to accept: %s",
            len(unknown),
            unknown[:20],
        )
        self._insert_ignore(
            conn,
            Device,
            [
                {
                    "id": d,
                    "site_id": batch.seen[d][0],
                    "quarantined": True,
                    "status": DeviceStatus.UNKNOWN.value,
                    "created_at": now,
                }
                for d in unknown
            ],
        )
        for d in unknown:
            learned.devices[d] = KnownDevice(batch.seen[d][0], None, None, True)

    def _insert_ignore(self, conn: Connection, model: type, rows: list[dict]) -> None:
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(model).on_conflict_do_nothing(), rows)

    def _update_statuses(self, conn: Connection, batch: Batch) -> None:
        """Store each device's latest status; record it in device_status_changes if it changed.

        A status older than what the registry heard since (history seeded behind live data) is
        recorded in the history if it changed there, but does not overwrite the live status.
        """
        table = Device.__table__
        statuses = sorted(batch.statuses.values(), key=lambda r: r.device_id)
        ids = [r.device_id for r in statuses]
        registry: dict[str, tuple[str | None, datetime | None]] = {}
        before: dict[str, str] = {}
        changes = DeviceStatusChange.__table__.c
        # Each device's status at its message: its latest recorded change up to the batch's
        # newest status (a batch holds one status per device, newer than the stored changes).
        cutoff = max(r.received_at for r in statuses)
        for offset in range(0, len(ids), 900):
            chunk = ids[offset : offset + 900]
            for device_id, status, seen in conn.execute(
                select(table.c.id, table.c.status, table.c.last_seen).where(table.c.id.in_(chunk))
            ):
                registry[device_id] = (status, ensure_utc(seen) if seen is not None else None)
            latest = (
                select(changes.device_id, func.max(changes.at).label("at"))
                .where(changes.device_id.in_(chunk), changes.at <= cutoff)
                .group_by(changes.device_id)
                .subquery()
            )
            for device_id, status in conn.execute(
                select(changes.device_id, changes.status).join(
                    latest, (latest.c.device_id == changes.device_id) & (latest.c.at == changes.at)
                )
            ):
                before[device_id] = status
        updates, changed = [], []
        for row in statuses:
            if row.device_id not in registry:
                continue  # blocked, or removed meanwhile: nothing to attach a history to
            status = (DeviceStatus.ONLINE if row.status.online else DeviceStatus.OFFLINE).value
            current_status, last_seen = registry[row.device_id]
            current = last_seen is None or row.received_at >= last_seen - STATUS_SKEW
            previous = before.get(row.device_id, current_status if current else None)
            if previous != status:
                changed.append(
                    {
                        "device_id": row.device_id,
                        "status": status,
                        "at": row.received_at,
                        "reason": StatusChangeReason.STATUS.value,
                        "firmware": row.status.firmware,
                    }
                )
            if current:
                updates.append(
                    {
                        "b_id": row.device_id,
                        "b_status": status,
                        "b_changed": row.received_at if current_status != status else None,
                        "b_firmware": row.status.firmware,
                        "b_battery": row.status.battery,
                        "b_rssi": row.status.rssi,
                        "b_seen": batch.seen[row.device_id][1]
                        if row.device_id in batch.seen
                        else row.received_at,
                    }
                )
        if changed:
            self._insert_ignore(conn, DeviceStatusChange, changed)
        if updates:
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(
                    status=bindparam("b_status"),
                    status_since=_coalesce("b_changed", table.c.status_since),
                    firmware=_coalesce("b_firmware", table.c.firmware),
                    battery=_coalesce("b_battery", table.c.battery),
                    rssi=_coalesce("b_rssi", table.c.rssi),
                    last_seen=self._latest_seen(),
                ),
                updates,
            )

    def _latest_seen(self) -> object:
        """last_seen never moves backwards: older data (a seeded history) leaves it alone."""
        column = Device.__table__.c.last_seen
        seen = bindparam("b_seen", type_=column.type)
        greatest = func.greatest if self._dialect == "postgresql" else func.max
        return greatest(func.coalesce(column, seen), seen)

    def _update_last_seen(self, conn: Connection, batch: Batch) -> None:
        written = self._last_seen_written
        due = [
            {"b_id": device, "b_seen": seen}
            for device, (_site, seen) in batch.seen.items()
            if device not in batch.statuses
            and (device not in written or seen - written[device] >= LAST_SEEN_GRANULARITY)
        ]
        if not due:
            return
        table = Device.__table__
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(last_seen=self._latest_seen()),
            due,
        )

    def _remember_last_seen(self, batch: Batch) -> None:
        written = self._last_seen_written
        for device, (_site, seen) in batch.seen.items():
            if device not in written or seen - written[device] >= LAST_SEEN_GRANULARITY:
                written[device] = seen

    def _record_command_acks(self, conn: Connection, batch: Batch) -> None:
        table = Command.__table__
        conn.execute(
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.device_id == bindparam("b_device"),
                table.c.status.in_([CommandStatus.PENDING.value, CommandStatus.SENT.value]),
            )
            .values(
                status=bindparam("b_status"),
                acked_at=bindparam("b_at"),
                ack_detail=bindparam("b_detail"),
            ),
            [
                {
                    "b_id": a.command_id,
                    "b_device": a.device_id,
                    "b_status": (CommandStatus.ACKED if a.ok else CommandStatus.FAILED).value,
                    "b_at": a.received_at,
                    "b_detail": a.detail,
                }
                for a in batch.acks
            ],
        )

    # --- time series and events

    def _insert_readings(self, conn: Connection, readings: list[ReadingRow]) -> None:
        if self._dialect == "postgresql":
            # One statement for the whole batch: arrays unnested server-side.
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(
                    _PG_READINGS,
                    (
                        _pg_text_array([r.device_id for r in readings]),
                        _pg_text_array([r.metric for r in readings]),
                        _pg_number_array(_epoch_microseconds(readings)),
                        _pg_number_array([float(r.value) for r in readings]),
                    ),
                )
            finally:
                cursor.close()
            return
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO readings (device_id, metric, ts, value) VALUES (?, ?, ?, ?)",
            [(r.device_id, r.metric, _sqlite_ts(r.ts), r.value) for r in readings],
        )

    def _insert_events(
        self, conn: Connection, batch: Batch, learned: _Learned
    ) -> list[StoredEvent]:
        table = Event.__table__
        now = utcnow()
        stored: list[StoredEvent] = []
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        for event in batch.events:
            known = learned.devices.get(event.device_id) or self.cache.get(event.device_id)
            resident = known.resident_id if known else None
            # One statement per event: events are rare next to readings, and RETURNING tells
            # which are new, so a redelivered fall never raises a second alert.
            new_id = conn.execute(
                dialect_insert(table)
                .values(
                    device_id=event.device_id,
                    site_id=event.site_id,
                    resident_id=resident,
                    type=event.type,
                    ts=event.ts,
                    data=event.data,
                    received_at=now,
                )
                .on_conflict_do_nothing()
                .returning(table.c.id)
            ).scalar()
            if new_id is not None:
                stored.append(
                    StoredEvent(
                        id=new_id,
                        device_id=event.device_id,
                        site_id=event.site_id,
                        resident_id=resident,
                        device_type=known.type if known else None,
                        type=event.type,
                        ts=event.ts,
                        data=event.data,
                        received_at=now,
                        quarantined=known.quarantined if known else True,
                    )
                )
        return stored


class WrongSite(ValueError):
    """The batch holds messages of a device under another site than the registry's."""


@dataclass(slots=True)
class _Learned:
    """Registry facts one batch found or wrote, for the cache once the batch is committed."""

    devices: dict[str, KnownDevice] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)


def _pg_text_array(values: list[str]) -> str:
    """A PostgreSQL array literal; every element quoted, so NULL, commas or spaces stay text."""
    if not values:
        return "{}"
    if '"' in (raw := "".join(values)) or "\\" in raw:  # ids never have them; escape anyway
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def _pg_number_array(values: list[int] | list[float]) -> str:
    """A PostgreSQL array literal of finite numbers (the contract rejects NaN and infinities)."""
    return "{" + ",".join(map(repr, values)) + "}"


def _epoch_microseconds(readings: list[ReadingRow]) -> list[int]:
    """Exact microseconds since the epoch of each row (aware datetimes only)."""
    out: list[int] = []
    last_ts: datetime | None = None
    last = 0
    for r in readings:
        ts = r.ts
        if ts is not last_ts:  # rows of one sample share their timestamp object
            last_ts, last = ts, (ts - _EPOCH) // _MICROSECOND
        out.append(last)
    return out


def _coalesce(param: str, column: object) -> object:
    return func.coalesce(bindparam(param), column)


def _sqlite_ts(ts: datetime) -> str:
    # Same text form SQLAlchemy's DateTime uses on SQLite (naive UTC), so queries compare right.
    return ts.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
