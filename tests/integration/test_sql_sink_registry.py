"""The SQL sink and the registry: unknown devices are quarantined, blocked ones are not."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import registry, schema
from core.db import make_engine
from ingest.batch import Batch, ReadingRow
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import BlockedDevice, Device
from tests.conftest import make_test_settings

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def batch_from(*devices: str) -> Batch:
    return Batch(
        readings=[ReadingRow(d, "temperature_c", T0, 21.0, "home") for d in devices],
        seen={d: ("home", T0) for d in devices},
        messages=len(devices),
    )


def test_a_device_blocked_after_the_cache_loaded_is_not_quarantined_again(
    migrated_database_url, tmp_path
) -> None:
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    try:
        schema.upgrade(engine)
        with Session(engine) as session:
            registry.create_site(session, "home", "Home", "Asia/Seoul")
            session.commit()
        cache = RegistryCache(refresh_seconds=3600)
        with engine.connect() as connection:
            cache.load(connection)
        # Another replica's operator rejects "rogue" after this replica loaded its cache.
        with Session(engine) as session:
            session.add(BlockedDevice(device_id="rogue", site_id="home"))
            session.commit()

        SqlSink(engine, cache, "Asia/Seoul").write(batch_from("rogue", "stranger"))

        with Session(engine) as session:
            devices = {d.id: d.quarantined for d in session.scalars(select(Device))}
        assert devices == {"stranger": True}
        assert "rogue" in cache.blocked() and cache.get("rogue") is None
    finally:
        engine.dispose()


def test_the_cache_learns_blocks_and_unblocks_at_its_refresh(
    migrated_database_url, tmp_path
) -> None:
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    try:
        schema.upgrade(engine)
        with Session(engine) as session:
            registry.create_site(session, "home", "Home", "Asia/Seoul")
            session.add(BlockedDevice(device_id="rogue", site_id="home"))
            session.commit()
        cache = RegistryCache(refresh_seconds=0)
        with engine.connect() as connection:
            cache.load(connection)
        assert cache.blocked() == {"rogue"}
        with Session(engine) as session:
            assert registry.unblock_device(session, "rogue")
            session.commit()
        with engine.connect() as connection:
            cache.refresh_if_stale(connection)
        assert cache.blocked() == frozenset()
    finally:
        engine.dispose()
