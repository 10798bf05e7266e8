"""The silent state: a device not reported offline but quiet past its type's reporting interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.device_state import ShownStatus, shown_status, silent_after
from core.use_cases.overview import Problem, problems_of
from models import DeviceStatus

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def test_silence_limits_follow_each_types_reporting_interval() -> None:
    assert silent_after("motion_sensor") == timedelta(minutes=3)
    assert silent_after("fall_detector") == timedelta(minutes=90)
    assert silent_after(None) == silent_after("no_such_type") == timedelta(minutes=90)


def test_shown_status() -> None:
    quiet = NOW - timedelta(minutes=20)
    assert shown_status(DeviceStatus.ONLINE, quiet, "motion_sensor", NOW) is ShownStatus.SILENT
    assert shown_status(DeviceStatus.ONLINE, quiet, "panic_button", NOW) is ShownStatus.ONLINE
    assert shown_status(DeviceStatus.OFFLINE, quiet, "motion_sensor", NOW) is ShownStatus.OFFLINE
    assert shown_status(DeviceStatus.ONLINE, None, "motion_sensor", NOW) is ShownStatus.ONLINE
    assert shown_status("unknown", quiet, "env_sensor", NOW) is ShownStatus.SILENT


def test_overview_problems_judge_silence_by_device_type() -> None:
    quiet = NOW - timedelta(minutes=20)  # under the old flat hour
    assert problems_of("online", quiet, 80, False, NOW, "bed_sensor") == (Problem.SILENT,)
    assert problems_of("online", quiet, 80, False, NOW, "door_sensor") == ()
