"""The catalogue's expected reporting intervals cover every device type and match the simulator."""

from __future__ import annotations

from datetime import timedelta

from core.contract.catalogue import REPORT_INTERVALS, DeviceType
from simulator.simulation import BATTERY_EVERY, REPORT_EVERY, STATUS_EVERY


def test_every_device_type_has_an_interval() -> None:
    assert set(REPORT_INTERVALS) == set(DeviceType)
    assert all(interval > timedelta(0) for interval in REPORT_INTERVALS.values())


def test_simulated_devices_speak_at_least_as_often_as_the_catalogue_expects() -> None:
    # The quietest a simulated device gets: its report period, or (wearable on its charger)
    # its battery period, but never longer than its status heartbeat.
    for kind in DeviceType:
        quietest = min(max(REPORT_EVERY[kind], BATTERY_EVERY.get(kind, 0)), STATUS_EVERY)
        assert REPORT_INTERVALS[kind] >= timedelta(seconds=quietest), kind
        # ...and the catalogue is not so lax that a silent device goes unnoticed for long.
        assert REPORT_INTERVALS[kind] <= timedelta(seconds=STATUS_EVERY), kind
