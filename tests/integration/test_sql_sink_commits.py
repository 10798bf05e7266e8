"""Every batch the SQL sink writes is committed, also right after a registry cache refresh.

Regression: the refresh's reads began a transaction on the write's connection, the batch's
Session joined it instead of committing, and closing the connection rolled the batch back after
its messages had been acknowledged (found by the memory benchmark: one batch a minute lost).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import registry, schema
from core.db import make_engine
from ingest.batch import Batch, ReadingRow
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import Reading
from tests.conftest import make_test_settings

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_batches_written_after_a_cache_refresh_are_committed(
    migrated_database_url, tmp_path
) -> None:
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    try:
        schema.upgrade(engine)
        with Session(engine) as session:
            registry.create_site(session, "home", "Home", "Asia/Seoul")
            registry.add_device(session, device_id="w1", site_id="home", device_type="wearable")
            session.commit()
        # refresh_seconds=0: the cache refreshes before every write, the case that lost data.
        sink = SqlSink(engine, RegistryCache(refresh_seconds=0), "Asia/Seoul")
        for n in range(3):
            ts = T0 + timedelta(seconds=n)
            sink.write(Batch(readings=[ReadingRow("w1", "heart_rate", ts, 70.0 + n, "home")]))
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Reading)) == 3
    finally:
        engine.dispose()
