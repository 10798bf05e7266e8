"""Flows run against a temporary Prefect server (one per test session) and a real database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.db import make_engine
from core.settings import Settings
from flows import runtime
from models import Base
from tests.conftest import make_test_settings
from tests.support.databases import migrated_database, single_backend


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session", autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Failing tasks still retry in tests, but at once (production waits 10 s, 1 min, 5 min)."""
    import importlib
    import pkgutil

    from prefect import Task

    import flows

    changed: list[tuple[Task, object]] = []
    for info in pkgutil.iter_modules(flows.__path__):
        module = importlib.import_module(f"flows.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Task) and value.retry_delay_seconds:
                changed.append((value, value.retry_delay_seconds))
                value.retry_delay_seconds = 0
    yield
    for task, delay in changed:
        task.retry_delay_seconds = delay  # type: ignore[assignment]


@dataclass
class FlowDatabase:
    """The database the flows' runtime uses, and settings pointing at it."""

    engine: Engine
    settings: Settings

    def session(self) -> Session:
        """A session to arrange and inspect data (commit what the flow must see)."""
        return Session(self.engine, expire_on_commit=False)

    def empty(self) -> None:
        """Delete every row, children first."""
        with self.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(scope="session")
def db_backend() -> str:
    """Flows run on one backend: their queries run on both in tests/integration."""
    return single_backend()


@pytest.fixture(scope="module")
def flow_db(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowDatabase]:
    """A migrated database per backend for a module's flow tests."""
    directory = tmp_path_factory.mktemp("flows")
    with migrated_database(db_backend, directory) as url:
        settings = make_test_settings(directory, database_url=url, log_level="WARNING")
        engine = make_engine(settings)
        try:
            yield FlowDatabase(engine, settings)
        finally:
            runtime.reset()
            engine.dispose()


@pytest.fixture
def flows_on(flow_db: FlowDatabase, tmp_path: Path) -> Iterator[FlowDatabase]:
    """An empty database, and the flows' runtime using it (Data Docs in the test's tmp_path)."""
    flow_db.empty()
    runtime.use(flow_db.settings.model_copy(update={"data_dir": tmp_path}))
    yield flow_db
    runtime.reset()
