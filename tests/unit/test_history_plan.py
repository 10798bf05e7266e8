"""The incidents planned over a seeded history: present whatever the hour the seed runs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from simulator.history import plan_scenarios
from tests.unit.test_simulator_life import demo_site

# Every kind whose first day falls inside two days: a fall on day 0, a night exit on day 0, a
# panic press, an offline device and a swinging heart rate on day 1.
TWO_DAY_KINDS = {"fall", "night_exit", "panic", "device_offline", "threshold_flapping"}


@pytest.mark.parametrize("hour", range(24))
def test_two_days_hold_each_early_incident_whatever_the_start_hour(hour: int) -> None:
    site = demo_site(20)
    start = datetime(2026, 12, 2, hour, 0, tzinfo=UTC)
    end = start + timedelta(days=2)
    plan = plan_scenarios(site, start, end, seed=3)
    kinds = Counter(s.spec.name for s in plan)
    assert set(kinds) >= TWO_DAY_KINDS, (hour, kinds)
    for scenario in plan:
        assert timedelta(0) <= scenario.spec.offset < end - start


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    site = demo_site(20)
    start = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    end = start + timedelta(days=7)
    plan = plan_scenarios(site, start, end, seed=3)
    texts = [s.spec.text for s in plan]
    assert texts == [s.spec.text for s in plan_scenarios(site, start, end, seed=3)]
    assert texts != [s.spec.text for s in plan_scenarios(site, start, end, seed=4)]
    # A week holds every kind, falls every third day.
    kinds = Counter(s.spec.name for s in plan)
    assert set(kinds) == TWO_DAY_KINDS | {"flapping", "long_inactivity"}
    assert kinds["fall"] >= 2
