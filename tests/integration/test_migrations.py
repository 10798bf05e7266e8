"""Migrations agree with the models, go up and down, and adopt pre-Alembic databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

import models
from core import schema
from core.db import make_engine
from core.errors import SchemaError
from models.base import comparison_filter
from tests.conftest import make_test_settings

APP_TABLES = set(models.Base.metadata.tables)


@pytest.fixture
def fresh_engine(empty_database: str, tmp_path: Path):
    engine = make_engine(make_test_settings(tmp_path, database_url=empty_database))
    yield engine
    engine.dispose()


def test_models_and_migrations_agree(fresh_engine) -> None:
    schema.upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": comparison_filter(connection.dialect.name),
            },
        )
        diff = compare_metadata(context, models.Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_readings_key_serves_device_time_ranges(fresh_engine) -> None:
    schema.upgrade(fresh_engine)
    key = inspect(fresh_engine).get_pk_constraint("readings")["constrained_columns"]
    assert key == ["device_id", "ts", "metric"]


def test_readings_have_a_brin_index_on_time_on_postgresql(fresh_engine) -> None:
    schema.upgrade(fresh_engine)
    indexes = {i["name"]: i for i in inspect(fresh_engine).get_indexes("readings")}
    if fresh_engine.dialect.name != "postgresql":
        assert "ix_readings_ts_brin" not in indexes
        return
    assert indexes["ix_readings_ts_brin"]["column_names"] == ["ts"]
    with fresh_engine.connect() as connection:
        method, options = connection.execute(
            text(
                "SELECT am.amname, c.reloptions FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                "WHERE c.relname = 'ix_readings_ts_brin'"
            )
        ).one()
    # Autovacuum summarizes each page range as it fills (unsummarized ranges are always read).
    assert method == "brin" and options == ["autosummarize=on"]


def test_upgrade_downgrade_upgrade(fresh_engine) -> None:
    assert schema.upgrade(fresh_engine) == "created"
    assert set(inspect(fresh_engine).get_table_names()) >= APP_TABLES
    schema.downgrade(fresh_engine, "base")
    assert set(inspect(fresh_engine).get_table_names()) & APP_TABLES == set()
    assert schema.upgrade(fresh_engine) == "created"
    assert schema.current_revision(fresh_engine) == schema.head_revision()
    assert schema.upgrade(fresh_engine) == "current"


def test_database_predating_alembic_is_stamped_and_keeps_rows(fresh_engine) -> None:
    # Tables created without Alembic, with data in them, as an early deployment would have.
    models.Base.metadata.create_all(fresh_engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with fresh_engine.begin() as conn:
        conn.execute(
            models.Site.__table__.insert(),
            [{"id": "old", "name": "Old home", "timezone": "Asia/Seoul", "created_at": now}],
        )
        conn.execute(
            models.Reading.__table__.insert(),
            [
                {"device_id": "d1", "metric": "heart_rate", "ts": now, "value": 71.0},
                {"device_id": "d1", "metric": "spo2", "ts": now, "value": 97.0},
            ],
        )
    assert "alembic_version" not in inspect(fresh_engine).get_table_names()

    assert schema.upgrade(fresh_engine) == "stamped"

    assert schema.current_revision(fresh_engine) == schema.head_revision()
    with fresh_engine.connect() as conn:
        assert conn.scalar(select(models.Site.name)) == "Old home"
        assert conn.scalar(text("SELECT count(*) FROM readings")) == 2


def test_legacy_database_at_the_initial_schema_gets_later_migrations(fresh_engine) -> None:
    initial = schema.tables_created_by(schema.INITIAL_REVISION)
    initial_tables = [t for name, t in models.Base.metadata.tables.items() if name in initial]
    models.Base.metadata.create_all(fresh_engine, tables=initial_tables)
    assert schema.legacy_revision(set(inspect(fresh_engine).get_table_names())) == "0001"
    assert schema.upgrade(fresh_engine) == "stamped"
    assert "ingest_replicas" in inspect(fresh_engine).get_table_names()
    assert schema.current_revision(fresh_engine) == schema.head_revision()


def test_partial_legacy_schema_is_refused(fresh_engine) -> None:
    models.Site.__table__.create(fresh_engine)
    with pytest.raises(SchemaError, match="missing"):
        schema.upgrade(fresh_engine)
    assert "alembic_version" not in inspect(fresh_engine).get_table_names()


def test_plain_table_names_for_people_querying_by_hand() -> None:
    expected = {
        "sites",
        "residents",
        "users",
        "devices",
        "readings",
        "events",
        "alert_rules",
        "alerts",
        "notifications",
        "commands",
        "rollups",
        "dead_letters",
        "audit_log",
    }
    assert expected <= APP_TABLES
    readings = models.Base.metadata.tables["readings"]
    assert [c.name for c in readings.columns] == ["device_id", "metric", "ts", "value"]
