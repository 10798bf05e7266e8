"""Data quality on both backends: each injected problem is caught by its own expectation, a
clean window passes, results are stored and a failed suite opens a data-quality alert."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from core import registry, schema
from core.alerts.lifecycle import Subject
from core.db import make_engine
from expectations import store
from expectations.runner import QualityParams, SuiteResult, validate_window
from models import (
    Alert,
    AlertHistory,
    AuditEntry,
    DeadLetter,
    Device,
    QualityResult,
    QualityRun,
    Reading,
    RuleKind,
    Site,
)
from tests.conftest import make_test_settings
from tests.support.databases import migrated_database

START = datetime(2026, 1, 5, 10, tzinfo=UTC)
END = START + timedelta(hours=1)
NOW = END + timedelta(minutes=5)
PARAMS = QualityParams(
    freshness=timedelta(minutes=90), max_dead_letter_rate=0.05, future_skew=timedelta(minutes=5)
)
CLEAN_DEVICES = {"dq-wear": "heart_rate", "dq-env": "temperature_c", "dq-motion": "motion"}


@pytest.fixture(scope="module")
def quality_engine(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A committed database (Great Expectations reads it through its own engine)."""
    directory = tmp_path_factory.mktemp("quality")
    with migrated_database(db_backend, directory) as url:
        engine = make_engine(make_test_settings(directory, database_url=url))
        schema.upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def session(quality_engine: Engine) -> Iterator[Session]:
    """A session on an emptied database; what the test commits is validated."""
    with Session(quality_engine, expire_on_commit=False) as session:
        for model in (
            QualityResult,
            QualityRun,
            AlertHistory,
            Alert,
            AuditEntry,
            DeadLetter,
            Reading,
            Device,
            Site,
        ):
            session.execute(delete(model))
        site = registry.create_site(session, "dqsite", "Quality site", "UTC")
        for device_id in CLEAN_DEVICES:
            registry.add_device(
                session, device_id=device_id, site_id=site.id, device_type="wearable"
            )
        session.get(Device, "dq-wear").created_at = START - timedelta(days=30)  # type: ignore[union-attr]
        session.commit()
        yield session


def clean_readings() -> list[dict]:
    rows = []
    for device_id, metric in CLEAN_DEVICES.items():
        for minute in range(0, 60, 5):
            value = {"heart_rate": 70.0 + minute / 10, "temperature_c": 21.5, "motion": 1.0}
            rows.append(
                {
                    "device_id": device_id,
                    "metric": metric,
                    "ts": START + timedelta(minutes=minute, seconds=7),
                    "value": value[metric],
                }
            )
    return rows


def validate(session: Session, tmp_path: Path) -> dict[str, SuiteResult]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    results = validate_window(
        session, url, START, END, params=PARAMS, docs=tmp_path / "data-docs", now=NOW
    )
    return {r.suite: r for r in results}


def failing(results: dict[str, SuiteResult]) -> set[str]:
    return {c.check for r in results.values() for c in r.failed_checks}


def test_clean_window_passes(session: Session, tmp_path: Path) -> None:
    session.execute(insert(Reading), clean_readings())
    session.commit()
    results = validate(session, tmp_path)
    assert failing(results) == set()
    assert all(r.success for r in results.values())
    readings = results["readings"]
    assert readings.check("range.heart_rate").element_count == 12
    assert readings.check("known_device").element_count == 36
    assert readings.data_docs_url and readings.data_docs_url.startswith("file://")
    assert Path(readings.data_docs_url.removeprefix("file://")).exists()


def test_each_injected_problem_is_caught_by_its_expectation(
    session: Session, tmp_path: Path, db_backend: str
) -> None:
    site = session.get(Site, "dqsite")
    assert site is not None
    registry.add_device(
        session, device_id="dq-quarantined", site_id=site.id, device_type="wearable"
    )
    session.get(Device, "dq-quarantined").quarantined = True  # type: ignore[union-attr]
    registry.add_device(session, device_id="dq-silent", site_id=site.id, device_type="door_sensor")
    session.get(Device, "dq-silent").created_at = START - timedelta(days=2)  # type: ignore[union-attr]
    at = START + timedelta(minutes=30)
    injected = [
        # out of the catalogue's range
        {"device_id": "dq-wear", "metric": "heart_rate", "ts": at, "value": 300.0},
        # a boolean metric that is neither 0 nor 1
        {"device_id": "dq-motion", "metric": "motion", "ts": at, "value": 0.5},
        # a device nobody registered, and a quarantined one
        {"device_id": "dq-ghost", "metric": "heart_rate", "ts": at, "value": 70.0},
        {"device_id": "dq-quarantined", "metric": "heart_rate", "ts": at, "value": 70.0},
        # stamped a day in the future
        {
            "device_id": "dq-env",
            "metric": "temperature_c",
            "ts": NOW + timedelta(days=1),
            "value": 21.0,
        },
        # sent twice within one second (re-rounded timestamp)
        {"device_id": "dq-env", "metric": "temperature_c", "ts": at, "value": 21.0},
        {
            "device_id": "dq-env",
            "metric": "temperature_c",
            "ts": at + timedelta(milliseconds=400),
            "value": 21.0,
        },
        # a metric outside the catalogue
        {"device_id": "dq-env", "metric": "pressure_hpa", "ts": at, "value": 1013.0},
        # the silent device last spoke three hours before the window ended
        {
            "device_id": "dq-silent",
            "metric": "door_open",
            "ts": END - timedelta(hours=3),
            "value": 0.0,
        },
    ]
    expected = {
        "range.heart_rate",
        "boolean_values",
        "known_device",
        "not_in_future",
        "no_duplicates",
        "known_metric",
        "freshness",
        "dead_letter_rate",
    }
    if db_backend == "postgresql":
        # PostgreSQL stores NaN in a float column (SQLite turns it into a refused NULL).
        injected.append(
            {
                "device_id": "dq-wear",
                "metric": "heart_rate",
                "ts": at + timedelta(seconds=1),
                "value": math.nan,
            }
        )
        expected.add("not_null.value")
    session.execute(insert(Reading), clean_readings() + injected)
    session.add_all(
        DeadLetter(
            topic="care/v1/dqsite/x/telemetry",
            payload=b"{",
            payload_size=1,
            reason="bad_json",
            received_at=START + timedelta(minutes=m),
        )
        for m in range(5)
    )
    session.commit()

    results = validate(session, tmp_path)

    assert failing(results) == expected
    readings = results["readings"]
    assert not readings.success
    assert readings.check("range.heart_rate").unexpected_count == 1
    assert readings.check("range.heart_rate").sample[0]["value"] == 300.0
    assert readings.check("boolean_values").unexpected_count == 1
    assert {s["device_id"] for s in readings.check("known_device").sample} == {
        "dq-ghost",
        "dq-quarantined",
    }
    assert readings.check("not_in_future").unexpected_count == 1
    assert readings.check("no_duplicates").unexpected_count == 2
    assert readings.check("known_metric").sample[0]["metric"] == "pressure_hpa"
    freshness = results["device_freshness"].check("freshness")
    assert freshness.unexpected_count == 1
    assert freshness.sample[0]["device_id"] == "dq-silent"
    assert freshness.sample[0]["silent_minutes"] == 180.0
    rate = results["dead_letter_rate"].check("dead_letter_rate")
    assert rate.sample[0]["dead_letters"] == 5

    # Stored, and one data-quality alert per failed suite, routed like any alert.
    runs = {}
    for result in results.values():
        runs[result.suite] = run = store.store_result(session, result)
        store.alert_if_failed(session, result, run)
    session.commit()
    stored = session.scalars(select(QualityRun).order_by(QualityRun.id)).all()
    assert {r.suite: (r.success, r.failed) for r in stored} == {
        "readings": (False, len(expected - {"freshness", "dead_letter_rate"})),
        "device_freshness": (False, 1),
        "dead_letter_rate": (False, 1),
    }
    result_row = session.scalar(
        select(QualityResult).where(
            QualityResult.run_id == runs["readings"].id,
            QualityResult.expectation == "known_device",
        )
    )
    assert result_row is not None and result_row.unexpected_count == 2
    assert result_row.details["expectation_type"] == "expect_column_values_to_be_in_set"
    alerts = session.scalars(select(Alert).where(Alert.kind == RuleKind.DATA_QUALITY)).all()
    assert {(a.subject_type, a.subject_id) for a in alerts} == {
        (Subject("suite", name).type, name) for name in results
    }
    # The next failing run counts a repeat instead of a new alert.
    store.alert_if_failed(session, results["readings"], runs["readings"])
    session.commit()
    again = session.scalars(select(Alert).where(Alert.subject_id == "readings")).all()
    assert len(again) == 1 and again[0].occurrences == 2


def test_relative_docs_directory_is_resolved(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default data_dir is relative ("var"): Data Docs still build, under the working dir."""
    session.execute(insert(Reading), clean_readings())
    session.commit()
    monkeypatch.chdir(tmp_path)
    url = session.get_bind().url.render_as_string(hide_password=False)
    results = validate_window(
        session, url, START, END, params=PARAMS, docs=Path("var") / "data-docs", now=NOW
    )
    assert all(r.success for r in results)
    assert (tmp_path / "var" / "data-docs" / "index.html").exists()
