"""Creating and dropping throwaway test databases (SQLite files, PostgreSQL databases)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.services import TEST_DATABASE_URL, require

BACKENDS = ("sqlite", "postgresql")


@contextmanager
def throwaway_database(backend: str, directory: Path) -> Iterator[str]:
    """A new, empty database of `backend`, dropped afterwards; yields its URL."""
    if backend == "sqlite":
        path = directory / f"iotcare-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    assert TEST_DATABASE_URL is not None
    server = make_url(TEST_DATABASE_URL)
    name = f"iotcare_test_{uuid.uuid4().hex[:12]}"
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
