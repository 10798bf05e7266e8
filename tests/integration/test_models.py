"""Model behaviour that the rest of the system relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from models import Alert, AlertStatus, Reading, RuleKind, Severity
from tests.factories import Factory


def insert_readings_idempotently(session: Session, rows: list[dict]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(dialect_insert(Reading).on_conflict_do_nothing(), rows)


def test_timestamps_come_back_aware_utc(db_session: Session, factory: Factory) -> None:
    kst = timezone(timedelta(hours=9))
    site = factory.site()
    device = factory.device(site=site, last_seen=datetime(2026, 3, 1, 9, 0, tzinfo=kst))
    db_session.expire_all()
    last_seen = db_session.get(type(device), device.id).last_seen
    assert last_seen == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert last_seen.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(db_session: Session) -> None:
    db_session.add(Reading(device_id="d", metric="spo2", ts=datetime(2026, 1, 1), value=97))
    with pytest.raises(StatementError, match="naive datetime"):
        db_session.flush()


def test_readings_are_idempotent_on_device_metric_ts(db_session: Session) -> None:
    ts = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    rows = [
        {"device_id": "w1", "metric": "heart_rate", "ts": ts, "value": 80.0},
        {"device_id": "w1", "metric": "spo2", "ts": ts, "value": 97.0},
    ]
    insert_readings_idempotently(db_session, rows)
    insert_readings_idempotently(db_session, rows)  # a redelivery
    assert db_session.scalar(select(func.count()).select_from(Reading)) == 2
    with pytest.raises(IntegrityError):
        db_session.execute(insert(Reading), rows[:1])


def test_one_unresolved_alert_per_dedupe_key(db_session: Session) -> None:
    def alert(status: AlertStatus) -> Alert:
        return Alert(
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            status=status,
            subject_type="resident",
            subject_id="1",
            dedupe_key="rule1:resident:1",
            title="Fall",
        )

    db_session.add(alert(AlertStatus.RESOLVED))
    db_session.add(alert(AlertStatus.RESOLVED))
    db_session.add(alert(AlertStatus.OPEN))
    db_session.flush()
    with db_session.begin_nested():
        db_session.add(alert(AlertStatus.ACKNOWLEDGED))
        with pytest.raises(IntegrityError):
            db_session.flush()


def test_enum_columns_store_plain_strings(db_session: Session, factory: Factory) -> None:
    user = factory.user("operator")
    raw = db_session.execute(
        select(func.lower(func.coalesce(type(user).__table__.c.role, ""))).where(
            type(user).__table__.c.id == user.id
        )
    ).scalar_one()
    assert raw == "operator"
