"""Database engine (one per process), session factory and a transactional session scope."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings

log = logging.getLogger(__name__)

# libpq socket options so that a database host that vanishes without a reset (power loss,
# network partition, dropped NAT state) fails a statement in about 20-25 s instead of blocking
# it for the kernel defaults: ~15 min of retransmissions for a request that is never
# acknowledged, 2 h of keepalive idle time for a reply that never comes. A blocked write
# blocks ingest's flusher (nothing is lost, but nothing is ingested and nothing is reported as
# failing). Only a silent peer trips these: a slow query on a live server is still acknowledged
# and answers keepalive probes.
_DEAD_PEER_DETECTION = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,  # ms that sent data may stay unacknowledged
}


def make_engine(settings: Settings, url: str | URL | None = None, **kwargs: Any) -> Engine:
    """Create the process's engine: pooled PostgreSQL, or SQLite in WAL mode with a busy timeout."""
    db_url = make_url(url or settings.database_url)
    if db_url.get_backend_name() == "sqlite":
        return _sqlite_engine(db_url, settings, **kwargs)
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_timeout": settings.database_pool_timeout.total_seconds(),
        "pool_recycle": 1800,
        "connect_args": {
            "application_name": "iotcare",
            "connect_timeout": 10,
            **_DEAD_PEER_DETECTION,
        },
    }
    options.update(kwargs)
    return create_engine(db_url, **options)


def _sqlite_engine(db_url: URL, settings: Settings, **kwargs: Any) -> Engine:
    database = db_url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    busy_ms = int(settings.sqlite_busy_timeout.total_seconds() * 1000)
    options: dict[str, Any] = {
        "connect_args": {"timeout": busy_ms / 1000, "check_same_thread": False},
    }
    options.update(kwargs)
    engine = create_engine(db_url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
        # savepoints and transactional DDL (migrations) behave as on PostgreSQL.
        dbapi_connection.isolation_level = None
        # WAL lets the app read while ingest writes; foreign keys are off by default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock when the transaction starts. With a deferred BEGIN,
        # two processes that both read and then write deadlock on the lock upgrade and one
        # fails at once with "database is locked" (the busy timeout does not apply to that).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# Where a session keeps the settings of the process that opened it (Session.info).
SETTINGS_INFO_KEY = "iotcare.settings"


def session_info(settings: Settings | None) -> dict[str, Any]:
    """Session.info carrying these settings (none: an empty dict)."""
    return {SETTINGS_INFO_KEY: settings} if settings is not None else {}


def make_session_factory(engine: Engine, settings: Settings | None = None) -> sessionmaker[Session]:
    """Session factory bound to the engine; objects stay readable after commit.

    With settings, every session carries them, so that what runs deep inside a transaction
    (the notification outbox an alert change queues into) uses the process's own settings.
    """
    return sessionmaker(bind=engine, expire_on_commit=False, info=session_info(settings))


def session_settings(session: Session) -> Settings | None:
    """The settings the session was opened with (None: opened without any)."""
    settings = session.info.get(SETTINGS_INFO_KEY)
    return settings if isinstance(settings, Settings) else None


@contextlib.contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
