"""Rollups on both backends: equal to pandas' own aggregation, idempotent, late data included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import rollups
from models import Reading, Rollup, RollupPeriod

HOUR, DAY = RollupPeriod.HOUR, RollupPeriod.DAY
T0 = datetime(2026, 3, 1, 22, tzinfo=UTC)  # three hours across a UTC day boundary
LATE = timedelta(hours=2)


def crafted_readings(seed: int = 1) -> pd.DataFrame:
    """Irregular timestamps and uneven counts: 3 devices x 2 metrics over 22:00-01:00 UTC."""
    rng = np.random.default_rng(seed)
    rows = []
    for device in ("roll-a", "roll-b", "roll-c"):
        for metric, (mean, spread) in {"heart_rate": (75, 15), "temperature_c": (22, 3)}.items():
            seconds = np.sort(rng.choice(3 * 3600, size=int(rng.integers(5, 60)), replace=False))
            for s in seconds:
                value = round(float(rng.normal(mean, spread)), 2)
                rows.append((device, metric, T0 + timedelta(seconds=int(s)), value))
    return pd.DataFrame(rows, columns=["device_id", "metric", "ts", "value"])


def store(session: Session, frame: pd.DataFrame) -> None:
    session.execute(insert(Reading), frame.to_dict("records"))
    session.flush()


def expected(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    grouped = frame.assign(bucket=pd.to_datetime(frame["ts"], utc=True).dt.floor(freq)).groupby(
        ["device_id", "metric", "bucket"]
    )["value"]
    result = grouped.agg(["count", "min", "max", "mean"])
    result["p95"] = grouped.quantile(0.95)
    return result.sort_index()


def stored(session: Session, period: RollupPeriod) -> pd.DataFrame:
    rows = session.execute(
        select(
            Rollup.device_id,
            Rollup.metric,
            Rollup.bucket,
            Rollup.count,
            Rollup.min,
            Rollup.max,
            Rollup.mean,
            Rollup.p95,
        ).where(Rollup.period == period, Rollup.device_id.like("roll-%"))
    ).all()
    frame = pd.DataFrame(
        rows, columns=["device_id", "metric", "bucket", "count", "min", "max", "mean", "p95"]
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame.set_index(["device_id", "metric", "bucket"]).sort_index()


def assert_same(actual: pd.DataFrame, wanted: pd.DataFrame) -> None:
    assert list(actual.index) == list(wanted.index)
    assert actual["count"].tolist() == wanted["count"].tolist()
    for column in ("min", "max", "mean", "p95"):
        assert actual[column].to_numpy() == pytest.approx(wanted[column].to_numpy(), rel=1e-9)


def test_hourly_and_daily_rollups_equal_pandas(db_session: Session) -> None:
    frame = crafted_readings()
    store(db_session, frame)
    hours = rollups.rollup_window(db_session, rollups.Window(HOUR, T0, T0 + timedelta(hours=3)))
    days = rollups.rollup_window(
        db_session, rollups.Window(DAY, T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=2))
    )
    assert hours == 3 * 6 and days == 2 * 6
    assert_same(stored(db_session, HOUR), expected(frame, "h"))
    assert_same(stored(db_session, DAY), expected(frame, "D"))


def test_rerunning_a_window_changes_nothing(db_session: Session) -> None:
    store(db_session, crafted_readings(2))
    window = rollups.Window(HOUR, T0, T0 + timedelta(hours=3))
    rollups.rollup_window(db_session, window)
    before = db_session.execute(select(Rollup).order_by(Rollup.device_id, Rollup.bucket)).all()
    snapshot = [
        (r.device_id, r.metric, r.bucket, r.count, r.min, r.max, r.mean, r.p95, r.updated_at)
        for (r,) in before
    ]
    db_session.expire_all()
    assert rollups.rollup_window(db_session, window) == 0
    after = db_session.execute(select(Rollup).order_by(Rollup.device_id, Rollup.bucket)).all()
    assert [
        (r.device_id, r.metric, r.bucket, r.count, r.min, r.max, r.mean, r.p95, r.updated_at)
        for (r,) in after
    ] == snapshot


def test_late_reading_is_picked_up_by_the_next_run(db_session: Session) -> None:
    frame = crafted_readings(3)
    store(db_session, frame)
    now = T0 + timedelta(hours=3, minutes=5)  # 01:05: hours 22, 23 and 00 have closed
    first = rollups.run_incremental(db_session, HOUR, lateness=LATE, now=now)
    assert first.window == rollups.Window(HOUR, T0, T0 + timedelta(hours=3))
    assert rollups.get_watermark(db_session, HOUR) == T0 + timedelta(hours=3)
    # A device flushes its buffer an hour later: a reading stamped 23:30, out of order.
    late = pd.DataFrame(
        [("roll-a", "heart_rate", T0 + timedelta(hours=1, minutes=30), 250.0)],
        columns=frame.columns,
    )
    store(db_session, late)
    second = rollups.run_incremental(db_session, HOUR, lateness=LATE, now=now + timedelta(hours=1))
    assert second.window is not None and second.window.start <= late["ts"][0]
    assert_same(stored(db_session, HOUR), expected(pd.concat([frame, late]), "h"))
    # A day is rolled up once it closed more than the margin ago, late reading included.
    march_2 = T0.replace(day=2, hour=0)
    assert rollups.run_incremental(db_session, DAY, lateness=LATE, now=now).rows == 0
    for day_end in (march_2, march_2 + timedelta(days=1)):
        run = rollups.run_incremental(db_session, DAY, lateness=LATE, now=day_end + LATE)
        assert run.window == rollups.Window(DAY, day_end - timedelta(days=1), day_end)
    days = stored(db_session, DAY)
    assert days["count"].sum() == len(frame) + 1


def test_rollups_read_back_as_a_dataframe(db_session: Session) -> None:
    store(db_session, crafted_readings(4))
    rollups.rollup_window(db_session, rollups.Window(HOUR, T0, T0 + timedelta(hours=3)))
    frame = rollups.load_rollups(
        db_session,
        period=HOUR,
        start=T0,
        end=T0 + timedelta(hours=1),
        metric="heart_rate",
        device_ids=["roll-a"],
    )
    assert len(frame) == 1
    assert frame["bucket"].iloc[0] == pd.Timestamp(T0)
    assert str(frame["bucket"].dt.tz) == "UTC"


def test_time_index_is_summarized_and_rollups_stay_exact(db_session: Session) -> None:
    if db_session.get_bind().dialect.name != "postgresql":
        assert rollups.summarize_time_index(db_session) is None  # no BRIN index on SQLite
        return
    # Enough rows in time order to fill several of the index's 128-page ranges.
    start = datetime(2026, 3, 2, 0, tzinfo=UTC)
    bulk = pd.DataFrame(
        {
            "device_id": [f"brin-{i % 50}" for i in range(60_000)],
            "metric": "heart_rate",
            "ts": [start + timedelta(seconds=i // 50) for i in range(60_000)],
            "value": 70.0,
        }
    )
    store(db_session, bulk)
    frame = crafted_readings()
    store(db_session, frame)
    assert rollups.summarize_time_index(db_session) >= 2
    assert rollups.summarize_time_index(db_session) == 0

    rollups.rollup_window(db_session, rollups.Window(HOUR, T0, T0 + timedelta(hours=3)))
    assert_same(stored(db_session, HOUR), expected(frame, "h"))
