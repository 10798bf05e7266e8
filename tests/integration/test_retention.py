"""Retention deletes exactly what is older than its age, in batches; rollups stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from core import retention
from models import (
    Channel,
    DeadLetter,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    QualityResult,
    QualityRun,
    Reading,
    Rollup,
    RollupPeriod,
)

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


def sessions_on(db_session: Session) -> sessionmaker[Session]:
    """Sessions on the test's connection: each batch commits a savepoint, rolled back after."""
    return sessionmaker(
        bind=db_session.connection(),
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
    )


def test_readings_older_than_the_cutoff_go(db_session: Session) -> None:
    ages = {
        "old": CUTOFF - timedelta(days=1),
        "just_old": CUTOFF - timedelta(microseconds=1),
        "at_cutoff": CUTOFF,
        "recent": CUTOFF + timedelta(days=10),
    }
    rows = []
    # Three devices, one unknown to the registry; seven readings each per age (batching).
    for device in ("ret-a", "ret-b", "ret-unregistered"):
        for name, ts in ages.items():
            for i in range(7):
                rows.append(
                    {
                        "device_id": device,
                        "metric": "heart_rate",
                        "ts": ts - timedelta(seconds=i)
                        if name != "at_cutoff"
                        else ts + timedelta(seconds=i),
                        "value": 70.0,
                    }
                )
    db_session.execute(insert(Reading), rows)
    db_session.add(
        Rollup(
            device_id="ret-a",
            metric="heart_rate",
            period=RollupPeriod.DAY,
            bucket=CUTOFF - timedelta(days=5),
            count=7,
            min=70,
            max=70,
            mean=70,
            p95=70,
        )
    )
    db_session.flush()

    deleted = retention.purge_readings(sessions_on(db_session), CUTOFF, batch_size=3)

    assert deleted == 3 * 2 * 7
    left = db_session.scalars(select(Reading.ts).where(Reading.device_id.like("ret-%"))).all()
    assert len(left) == 3 * 2 * 7
    assert min(left) == CUTOFF
    assert db_session.scalar(select(func.count()).select_from(Rollup)) >= 1


def test_dead_letters_and_delivered_notifications_go(db_session: Session) -> None:
    old, new = NOW - timedelta(days=100), NOW - timedelta(days=1)
    db_session.add_all(
        DeadLetter(topic="t", payload=b"x", payload_size=1, reason="bad_json", received_at=ts)
        for ts in (old, old, new)
    )
    cases = [
        ("sent-old", NotificationStatus.SENT, old),
        ("sent-new", NotificationStatus.SENT, new),
        ("pending-old", NotificationStatus.PENDING, None),
        ("dead-old", NotificationStatus.DEAD, None),
    ]
    for key, status, sent_at in cases:
        db_session.add(
            Notification(
                idempotency_key=f"ret-{key}-{uuid.uuid4()}",
                channel=Channel.INBOX,
                address="x",
                purpose=NotificationPurpose.REPORT,
                status=status,
                sent_at=sent_at,
                created_at=old,
                next_attempt_at=old,
            )
        )
    db_session.flush()
    sessions = sessions_on(db_session)

    assert retention.purge_dead_letters(sessions, NOW - timedelta(days=30), 1) == 2
    assert retention.purge_notifications(sessions, NOW - timedelta(days=90), 1) == 1

    assert db_session.scalars(select(DeadLetter.received_at)).all() == [new]
    left = db_session.scalars(select(Notification.idempotency_key)).all()
    assert sorted(k.split("-")[1] + "-" + k.split("-")[2] for k in left) == [
        "dead-old",
        "pending-old",
        "sent-new",
    ]


def test_quality_runs_and_their_data_docs_go(db_session: Session, tmp_path: Path) -> None:
    old, new = NOW - timedelta(days=120), NOW - timedelta(days=3)
    for started in (old, new):
        run = QualityRun(
            suite="readings",
            window_start=started,
            window_end=started,
            started_at=started,
            success=True,
        )
        db_session.add(run)
        db_session.flush()
        db_session.add(QualityResult(run_id=run.id, expectation="known_device", success=True))
    db_session.flush()
    for started in (old, new):
        page = tmp_path / "validations/readings/__none__" / started.strftime("%Y%m%dT%H%M%S.%fZ")
        page.mkdir(parents=True)
        (page / "x.html").write_text("<html/>")

    cutoff = NOW - timedelta(days=90)
    assert retention.purge_quality_runs(sessions_on(db_session), cutoff, 100) == 1
    assert retention.purge_data_docs(tmp_path, cutoff) == 1

    assert db_session.scalars(select(QualityRun.started_at)).all() == [new]
    assert db_session.scalar(select(func.count()).select_from(QualityResult)) == 1
    assert [p.name for p in tmp_path.glob("validations/*/*/*")] == [
        new.strftime("%Y%m%dT%H%M%S.%fZ")
    ]
