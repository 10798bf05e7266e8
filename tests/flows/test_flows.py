"""Every flow, run with Prefect (temporary server) on both backends, does its job end to end."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from core import registry, rollups, users
from core.contract.catalogue import DeviceType
from flows.care_report import care_reports_flow
from flows.quality import data_quality_flow
from flows.retention import retention_flow
from flows.rollups import rollups_flow
from flows.routines import routines_flow
from models import (
    Alert,
    CareReport,
    DeadLetter,
    JobWatermark,
    Notification,
    QualityResult,
    QualityRun,
    Reading,
    ResidentRoutine,
    Rollup,
    RuleKind,
)
from tests.flows.conftest import FlowDatabase

SEOUL = ZoneInfo("Asia/Seoul")


def seed(db: FlowDatabase) -> tuple[int, str, str]:
    """A site in Seoul, a resident with a wearable and a motion sensor, and their caregiver."""
    with db.session() as session, session.begin():
        site = registry.create_site(session, "flowsite", "Flow site", "Asia/Seoul")
        resident = registry.create_resident(session, site, "Kim", room="7")
        for device_id, kind in (
            ("fl-wear", DeviceType.WEARABLE),
            ("fl-motion", DeviceType.MOTION_SENSOR),
        ):
            registry.add_device(
                session,
                device_id=device_id,
                site_id=site.id,
                device_type=kind.value,
                resident_id=resident.id,
            )
        carer = users.create_user(
            session, username="carer", password="correct-horse-battery", role="caregiver"
        )
        users.assign(session, carer, resident)
        return resident.id, "fl-wear", "fl-motion"


def add_readings(db: FlowDatabase, rows: list[tuple[str, str, datetime, float]]) -> None:
    with db.session() as session, session.begin():
        session.execute(
            insert(Reading),
            [{"device_id": d, "metric": m, "ts": ts, "value": v} for d, m, ts, v in rows],
        )


def test_rollups_flow_is_incremental_and_idempotent(flows_on: FlowDatabase) -> None:
    _, wear, _ = seed(flows_on)
    now = datetime(2026, 1, 6, 3, 5, tzinfo=UTC)
    add_readings(
        flows_on,
        [
            (wear, "heart_rate", datetime(2026, 1, 5, 23, 30, tzinfo=UTC), 70.0),
            (wear, "heart_rate", datetime(2026, 1, 6, 1, 15, tzinfo=UTC), 80.0),
            (wear, "heart_rate", datetime(2026, 1, 6, 1, 45, tzinfo=UTC), 90.0),
        ],
    )
    assert rollups_flow(now=now) == {"hour": 1, "day": 1}
    assert rollups_flow(now=now) == {"hour": 0, "day": 0}
    with flows_on.session() as session:
        hourly = session.scalar(select(Rollup).where(Rollup.period == "hour"))
        assert hourly is not None and (hourly.count, hourly.mean) == (2, 85.0)
        marks = dict(session.execute(select(JobWatermark.job, JobWatermark.watermark)).all())
    assert marks == {
        "rollups.hour": datetime(2026, 1, 6, 3, tzinfo=UTC),
        "rollups.day": datetime(2026, 1, 6, tzinfo=UTC),
    }


def test_data_quality_flow_stores_results_and_alerts(flows_on: FlowDatabase) -> None:
    _, wear, motion = seed(flows_on)
    end = datetime(2026, 1, 5, 11, tzinfo=UTC)
    add_readings(
        flows_on,
        [(wear, "heart_rate", end - timedelta(minutes=m), 70.0) for m in range(1, 50, 7)]
        + [(motion, "motion", end - timedelta(minutes=m), 1.0) for m in range(1, 50, 7)]
        + [(wear, "heart_rate", end - timedelta(minutes=30, seconds=1), 400.0)],
    )
    outcome = data_quality_flow(window_end=end)
    assert outcome == {"readings": False, "device_freshness": True, "dead_letter_rate": True}
    with flows_on.session() as session:
        runs = session.scalars(select(QualityRun).order_by(QualityRun.suite)).all()
        assert [(r.suite, r.success) for r in runs] == [
            ("dead_letter_rate", True),
            ("device_freshness", True),
            ("readings", False),
        ]
        assert all(r.data_docs_url for r in runs)
        failed = session.scalars(
            select(QualityResult.expectation).where(QualityResult.success.is_(False))
        ).all()
        assert failed == ["range.heart_rate"]
        alert = session.scalar(select(Alert).where(Alert.kind == RuleKind.DATA_QUALITY))
        assert alert is not None and alert.subject_id == "readings"


def test_care_reports_flow_makes_and_sends_each_report_once(flows_on: FlowDatabase) -> None:
    resident_id, wear, motion = seed(flows_on)
    local = datetime(2026, 1, 5, 10, tzinfo=SEOUL).astimezone(UTC)
    add_readings(flows_on, [(wear, "heart_rate", local, 66.0), (motion, "motion", local, 1.0)])
    now = datetime(2026, 1, 6, 2, tzinfo=SEOUL)  # past local midnight and the 1 h delay
    assert care_reports_flow(now=now) == {"reports": 1, "notifications": 1}
    assert care_reports_flow(now=now) == {"reports": 0, "notifications": 0}
    with flows_on.session() as session:
        report = session.scalar(select(CareReport))
        assert report is not None and report.day == date(2026, 1, 5)
        assert report.resident_id == resident_id and report.sent_at is not None
        assert report.data["vitals"]["heart_rate"]["mean"] == 66.0
        assert session.scalar(select(func.count()).select_from(Notification)) == 1


def test_routines_flow_learns_every_resident(flows_on: FlowDatabase) -> None:
    resident_id, _, motion = seed(flows_on)
    start = datetime(2026, 2, 1, 8, tzinfo=SEOUL)
    add_readings(
        flows_on,
        [
            (motion, "motion", start + timedelta(days=d, minutes=m), 1.0)
            for d in range(14)
            for m in (0, 20, 30)
        ],
    )
    # Moving at 08:00, 08:20 and 08:30 only: from 08:30 to the next morning nothing (23.5 h).
    assert routines_flow(today=date(2026, 2, 15)) == {resident_id: 24}
    with flows_on.session() as session:
        routine = session.get(ResidentRoutine, (resident_id, 12))
        assert routine is not None and routine.usual_gap_minutes == 1410.0


def test_retention_flow_deletes_what_is_too_old(flows_on: FlowDatabase) -> None:
    _, wear, _ = seed(flows_on)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    add_readings(
        flows_on,
        [
            (wear, "heart_rate", now - timedelta(days=31), 70.0),
            (wear, "heart_rate", now - timedelta(days=29), 70.0),
        ],
    )
    with flows_on.session() as session, session.begin():
        session.add(
            DeadLetter(
                topic="t",
                payload=b"x",
                payload_size=1,
                reason="bad_json",
                received_at=now - timedelta(days=40),
            )
        )
    deleted = retention_flow(now=now)
    assert deleted == {"readings": 1, "dead_letters": 1, "notifications": 0, "quality_runs": 0}
    with flows_on.session() as session:
        assert session.scalar(select(func.count()).select_from(Reading)) == 1


def test_a_failing_step_is_retried_and_a_failed_run_says_why(
    flows_on: FlowDatabase, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, wear, _ = seed(flows_on)
    now = datetime(2026, 1, 6, 3, 5, tzinfo=UTC)
    add_readings(flows_on, [(wear, "heart_rate", datetime(2026, 1, 6, 1, 15, tzinfo=UTC), 80.0)])
    real = rollups.rollup_window
    attempts = []

    def flaky(*args: object, **kwargs: object) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollups, "rollup_window", flaky)
    assert rollups_flow(now=now) == {"hour": 1, "day": 0}
    assert len(attempts) == 3  # the hour chunk twice (failed, retried), then the day chunk

    def broken(*args: object, **kwargs: object) -> int:
        raise OperationalError("SELECT", {}, Exception("database is down"))

    monkeypatch.setattr(rollups, "rollup_window", broken)
    with caplog.at_level(logging.ERROR, logger="flows.runtime"), pytest.raises(OperationalError):
        rollups_flow(now=now + timedelta(hours=1))
    failure = next(r for r in caplog.records if r.name == "flows.runtime")
    assert "flow rollups run rollups 2026-01-06 04:05 failed" in failure.getMessage()
    assert "database is down" in failure.getMessage()
