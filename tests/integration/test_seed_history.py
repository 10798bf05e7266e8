"""`iotcare seed history`: days of simulated past, stored through ingest's own code, idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, distinct, func, select
from sqlalchemy.orm import Session

from core import schema
from core.db import make_engine
from core.seed import seed_demo
from core.timeutil import ensure_utc, utcnow
from models import (
    Alert,
    AlertHistory,
    AlertStatus,
    AuditEntry,
    CareReport,
    Device,
    Event,
    JobWatermark,
    Reading,
    Rollup,
    RuleKind,
)
from simulator.history import HISTORY_JOB, HistoryResult, seed_history
from tests.conftest import make_test_settings
from tests.support.cli import iotcare


@pytest.fixture
def demo_engine(migrated_database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of this backend with the demo site seeded."""
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    schema.upgrade(engine)
    with Session(engine) as session, session.begin():
        seed_demo(session, timezone="Asia/Seoul")
    yield engine
    engine.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Reading, Event, Alert, AlertHistory, Rollup, CareReport, AuditEntry)
        }


def test_two_days_of_history_fill_every_part_and_a_rerun_adds_nothing(
    demo_engine: Engine,
) -> None:
    now = utcnow()
    result = seed_history(demo_engine, site_id="sunrise", days=2, seed=3, now=now)
    assert isinstance(result, HistoryResult) and not result.skipped
    assert result.end <= now and result.end - result.start == timedelta(days=2)
    start, end = result.start, result.end
    with Session(demo_engine) as session:
        devices = set(session.scalars(select(Device.id).where(Device.site_id == "sunrise")))
        reporting = set(session.scalars(select(distinct(Reading.device_id))))
        assert devices and devices <= reporting  # every demo device has readings
        first, last = session.execute(select(func.min(Reading.ts), func.max(Reading.ts))).one()
        assert start <= ensure_utc(first) and ensure_utc(last) < end

        alerts = session.scalars(select(Alert)).all()
        assert alerts
        assert all(start <= ensure_utc(a.opened_at) < end for a in alerts)
        # A critical event opened its alert at the event's time, not when the seed ran.
        falls = [a for a in alerts if (a.details or {}).get("event_type") == "fall_detected"]
        assert falls
        for alert in falls:
            event = session.get(Event, alert.details["event_id"])
            assert event is not None
            assert ensure_utc(alert.opened_at) == ensure_utc(event.ts)
            assert ensure_utc(event.received_at) == ensure_utc(event.ts)
        assert {RuleKind.EVENT, RuleKind.DEVICE_OFFLINE} <= {RuleKind(a.kind) for a in alerts}
        handled = [a for a in alerts if a.status is AlertStatus.RESOLVED and a.resolved_by]
        assert handled
        for alert in handled:
            assert ensure_utc(alert.opened_at) < ensure_utc(alert.resolved_at) < end
            if alert.acknowledged_at is not None:
                assert ensure_utc(alert.acknowledged_at) <= ensure_utc(alert.resolved_at)
        false_alarms = [a for a in handled if (a.resolve_note or "").startswith("False alarm")]
        assert false_alarms and all(a.acknowledged_at is None for a in false_alarms)
        history_times = session.scalars(select(AlertHistory.at)).all()
        assert all(ensure_utc(at) < end for at in history_times)

        assert session.scalar(select(func.count()).select_from(Rollup)) == result.rollup_rows > 0
        reports = session.scalar(select(func.count()).select_from(CareReport))
        assert reports == result.reports >= 20  # a whole local day for each resident
        mark = session.get(JobWatermark, HISTORY_JOB)
        assert mark is not None and mark.details["sites"]["sunrise"]["done"] is True

    before = _counts(demo_engine)
    again = seed_history(
        demo_engine, site_id="sunrise", days=2, seed=3, now=now + timedelta(hours=2)
    )
    assert again.skipped
    assert (again.start, again.end) == (start, end)
    assert _counts(demo_engine) == before


def test_the_command_reports_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    assert iotcare("seed", "demo", database_url=url).returncode == 0
    first = iotcare("seed", "history", "--days", "1", "--quality-runs", "1", database_url=url)
    assert first.returncode == 0, first.stderr
    assert "History from" in first.stdout and "1 data-quality run." in first.stdout
    assert "Traceback" not in first.stderr
    second = iotcare("seed", "history", "--days", "1", database_url=url)
    assert second.returncode == 0, second.stderr
    assert "nothing added" in second.stdout
    unknown = iotcare("seed", "history", "--site", "nowhere", database_url=url)
    assert unknown.returncode == 1
    assert "nowhere" in unknown.stderr and "Traceback" not in unknown.stderr
