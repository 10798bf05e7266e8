"""Creating and dropping throwaway test databases (SQLite files, PostgreSQL databases)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BACKENDS = ("sqlite", "postgresql")


@contextmanager
def throwaway_database(backend: str, directory: Path) -> Iterator[str]:
    """A new, empty database of `backend`, dropped afterwards; yields its URL."""
    # Imported here: it imports pytest, and the benchmarks use postgres_database without it.
    from tests.support.services import TEST_DATABASE_URL, require

    if backend == "sqlite":
        path = directory / f"iotcare-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    assert TEST_DATABASE_URL is not None
    with postgres_database(TEST_DATABASE_URL, "iotcare_test") as url:
        yield url


@contextmanager
def postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database named `prefix`_<random> on the PostgreSQL server `server_url`
    (any database URL on it: the server is reached through that database); dropped afterwards,
    even with sessions still connected. Yields its URL."""
    server = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
