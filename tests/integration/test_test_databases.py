"""The suite's own database and service helpers: template copies, the run's own servers."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core import schema
from core.db import make_engine
from models import Site
from tests.conftest import make_test_settings
from tests.support import services, session_services
from tests.support.databases import migrated_database


def test_migrated_databases_are_at_head_and_apart(db_backend: str, tmp_path: Path) -> None:
    with (
        migrated_database(db_backend, tmp_path) as first,
        migrated_database(db_backend, tmp_path) as second,
    ):
        assert first != second
        engines = [
            make_engine(make_test_settings(tmp_path, database_url=u)) for u in (first, second)
        ]
        try:
            for engine in engines:
                assert schema.current_revision(engine) == schema.head_revision()
                assert schema.upgrade(engine) == "current"
            with Session(engines[0]) as session:
                session.add(Site(id="copy-one", name="Copy one", timezone="Asia/Seoul"))
                session.commit()
            counts = []
            for engine in engines:
                with Session(engine) as session:
                    counts.append(session.scalar(select(func.count()).select_from(Site)))
            assert counts == [1, 0]  # a copy's rows are its own, not the template's
        finally:
            for engine in engines:
                engine.dispose()


def test_a_run_without_servers_starts_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit.mosquitto import find_mosquitto

    services.require(
        session_services.postgres_usable() and find_mosquitto() is not None,
        "PostgreSQL and Mosquitto binaries",
        "IOTCARE_TEST_PG_BIN / IOTCARE_TEST_MOSQUITTO_BIN",
    )
    for variable in (session_services.DATABASE_VARIABLE, session_services.MQTT_VARIABLE):
        monkeypatch.setenv(variable, "")  # restored (or removed) after the test either way
        monkeypatch.delenv(variable)
    monkeypatch.setattr(services, "TEST_DATABASE_URL", None)
    monkeypatch.setattr(services, "TEST_MQTT_URL", None)
    stops = session_services.start_missing_services()
    try:
        assert len(stops) == 2
        database_url = services.TEST_DATABASE_URL
        mqtt_url = services.TEST_MQTT_URL
        assert database_url is not None and mqtt_url is not None
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                assert conn.scalar(select(func.version())).startswith("PostgreSQL")
        finally:
            engine.dispose()
        broker = urlsplit(mqtt_url)
        with socket.create_connection((broker.hostname or "", broker.port or 0), timeout=5):
            pass
    finally:
        for stop in reversed(stops):
            stop()
