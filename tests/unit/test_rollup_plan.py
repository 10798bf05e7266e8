"""Planning incremental rollup windows, and the p95 SQLite computes in Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.rollups import (
    Window,
    backfill_windows,
    ceil_bucket,
    floor_bucket,
    percentile,
    plan_incremental,
)
from models import RollupPeriod

HOUR, DAY = RollupPeriod.HOUR, RollupPeriod.DAY
LATE = timedelta(hours=2)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def test_first_hourly_run_covers_the_lateness_margin() -> None:
    window = plan_incremental(HOUR, None, at(5, 10, 5), LATE)
    # Hours that closed less than 2 h before 10:00 are re-aggregated: 07:00, 08:00 and 09:00.
    assert window == Window(HOUR, at(5, 7), at(5, 10))


def test_hourly_run_reopens_recent_hours_and_catches_up_missed_ones() -> None:
    assert plan_incremental(HOUR, at(5, 10), at(5, 11, 5), LATE) == Window(
        HOUR, at(5, 8), at(5, 11)
    )
    # The flow did not run for five hours: everything since the watermark is aggregated.
    assert plan_incremental(HOUR, at(5, 3), at(5, 8, 5), LATE) == Window(HOUR, at(5, 3), at(5, 8))


def test_a_day_is_rolled_up_once_its_lateness_margin_passed() -> None:
    assert plan_incremental(DAY, None, at(6, 1), LATE) == Window(DAY, at(4, 0), at(5, 0))
    assert plan_incremental(DAY, at(5, 0), at(6, 1), LATE) is None
    assert plan_incremental(DAY, at(5, 0), at(6, 2), LATE) == Window(DAY, at(5, 0), at(6, 0))
    assert plan_incremental(DAY, at(6, 0), at(6, 23), LATE) is None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        plan_incremental(HOUR, None, datetime(2026, 1, 5, 10), LATE)


def test_buckets_and_chunks() -> None:
    assert floor_bucket(at(5, 10, 59), HOUR) == at(5, 10)
    assert floor_bucket(at(5, 10, 59), DAY) == at(5, 0)
    assert ceil_bucket(at(5, 10), HOUR) == at(5, 10)
    assert ceil_bucket(at(5, 10, 1), HOUR) == at(5, 11)
    windows = backfill_windows(at(5, 0, 30), at(5, 13, 10), HOUR)
    assert [(w.start, w.end) for w in windows] == [
        (at(5, 0), at(5, 6)),
        (at(5, 6), at(5, 12)),
        (at(5, 12), at(5, 14)),
    ]
    assert sum(w.buckets for w in windows) == 14
    assert [w.buckets for w in backfill_windows(at(1, 5), at(4, 0), DAY)] == [1, 1, 1]


@pytest.mark.parametrize("size", [1, 2, 3, 10, 101])
def test_percentile_matches_pandas(size: int) -> None:
    values = np.random.default_rng(size).normal(70, 12, size).round(1).tolist()
    assert percentile(values, 0.95) == pytest.approx(pd.Series(values).quantile(0.95))


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 0.95) is None
