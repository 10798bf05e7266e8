"""Creating and dropping throwaway test databases (SQLite files, PostgreSQL databases)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from devkit.databases import postgres_database

BACKENDS = ("sqlite", "postgresql")


def single_backend() -> str:
    """The one backend of tests whose SQL is already tested on both in core (pages, flows):
    PostgreSQL, as in production, when a server is configured; SQLite otherwise."""
    from tests.support.services import CI, TEST_DATABASE_URL

    return "postgresql" if TEST_DATABASE_URL is not None or CI else "sqlite"


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


# Per process (each xdist worker has its own): a database per backend migrated to head once,
# which every `migrated_database` copies instead of running the migrations again.
_templates: dict[str, str] = {}
_template_drops = ExitStack()


@contextmanager
def migrated_database(backend: str, directory: Path) -> Iterator[str]:
    """A new database of `backend` at migration head, dropped afterwards; yields its URL.

    Copied from this process's template (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on
    PostgreSQL), so a test or module pays for a copy rather than for the whole migration chain.
    """
    template = _templates.get(backend) or _make_template(backend)
    if backend == "sqlite":
        with throwaway_database(backend, directory) as url:
            shutil.copyfile(template, make_url(url).database or "")
            yield url
        return
    from tests.support.services import TEST_DATABASE_URL

    assert TEST_DATABASE_URL is not None  # the template exists, so the server is configured
    with postgres_database(TEST_DATABASE_URL, "iotcare_test", template=template) as url:
        yield url


def _make_template(backend: str) -> str:
    """Create and migrate this process's template of `backend` (a file path, or a database name)."""
    from core import schema
    from core.db import make_engine
    from tests.conftest import make_test_settings

    directory = Path(tempfile.mkdtemp(prefix="iotcare-template-"))
    _template_drops.callback(shutil.rmtree, directory, ignore_errors=True)
    if backend == "sqlite":
        url = _template_drops.enter_context(throwaway_database(backend, directory))
    else:
        from tests.support.services import TEST_DATABASE_URL, require

        require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
        assert TEST_DATABASE_URL is not None
        url = _template_drops.enter_context(postgres_database(TEST_DATABASE_URL, "iotcare_tmpl"))
    engine = make_engine(make_test_settings(directory, database_url=url))
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()  # no session may stay connected to a PostgreSQL template
    _templates[backend] = make_url(url).database or ""
    return _templates[backend]


def drop_templates() -> None:
    """Drop this process's templates (at the end of the test session)."""
    _templates.clear()
    _template_drops.close()
