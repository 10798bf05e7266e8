"""The one place that says which metrics, event types and device types exist (contract v1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

REGISTRY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Metric:
    """A telemetry metric: its unit and the range a real sensor can report."""

    name: str
    unit: str
    minimum: float | None = None
    maximum: float | None = None
    boolean: bool = False

    def accepts(self, value: float | bool) -> bool:
        """Whether a value is inside the metric's valid range (booleans for boolean metrics)."""
        if self.boolean:
            return isinstance(value, bool) or value in (0, 1)
        if isinstance(value, bool):
            return False
        assert self.minimum is not None and self.maximum is not None
        return self.minimum <= value <= self.maximum


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("heart_rate", "bpm", 20, 250),
        Metric("spo2", "%", 50, 100),
        Metric("body_temp_c", "°C", 30, 45),
        Metric("temperature_c", "°C", -20, 60),
        Metric("humidity_pct", "%", 0, 100),
        Metric("co2_ppm", "ppm", 250, 10000),
        Metric("gas_ppm", "ppm", 0, 10000),
        Metric("motion", "bool", boolean=True),
        Metric("door_open", "bool", boolean=True),
        Metric("bed_occupied", "bool", boolean=True),
        Metric("battery_pct", "%", 0, 100),
    )
}


class EventType(StrEnum):
    """Discrete events a device can report."""

    FALL_DETECTED = "fall_detected"
    BUTTON_PRESSED = "button_pressed"
    FLAME_DETECTED = "flame_detected"
    SMOKE_DETECTED = "smoke_detected"
    GAS_LEAK = "gas_leak"
    DOOR_OPENED = "door_opened"
    MOTION = "motion"
    WANDERING = "wandering"


# Events that open a critical alert the moment they arrive.
CRITICAL_EVENTS = frozenset(
    {
        EventType.FALL_DETECTED,
        EventType.BUTTON_PRESSED,
        EventType.FLAME_DETECTED,
        EventType.SMOKE_DETECTED,
        EventType.GAS_LEAK,
    }
)


class DeviceType(StrEnum):
    """Kinds of device the platform knows."""

    MOTION_SENSOR = "motion_sensor"
    DOOR_SENSOR = "door_sensor"
    ENV_SENSOR = "env_sensor"
    WEARABLE = "wearable"
    FALL_DETECTOR = "fall_detector"
    FLAME_DETECTOR = "flame_detector"
    GAS_VALVE = "gas_valve"
    PANIC_BUTTON = "panic_button"
    BED_SENSOR = "bed_sensor"


# What each device type reports; devices per resident vs. per site (kitchen, corridor).
DEVICE_METRICS: dict[DeviceType, tuple[str, ...]] = {
    DeviceType.MOTION_SENSOR: ("motion", "battery_pct"),
    DeviceType.DOOR_SENSOR: ("door_open", "battery_pct"),
    DeviceType.ENV_SENSOR: ("temperature_c", "humidity_pct", "co2_ppm", "battery_pct"),
    DeviceType.WEARABLE: ("heart_rate", "spo2", "body_temp_c", "battery_pct"),
    DeviceType.FALL_DETECTOR: ("battery_pct",),
    DeviceType.FLAME_DETECTOR: ("battery_pct",),
    DeviceType.GAS_VALVE: ("gas_ppm",),
    DeviceType.PANIC_BUTTON: ("battery_pct",),
    DeviceType.BED_SENSOR: ("bed_occupied", "heart_rate", "battery_pct"),
}
ACTUATORS = frozenset({DeviceType.GAS_VALVE})

# The longest gap a healthy device of each type normally leaves between two messages (telemetry,
# events or its status heartbeat, sent at least every 30 minutes). The one table for "how long
# is too quiet": the device lists' silent state and the rules' default silence limits use it.
# Matches the simulator (simulator/simulation.py REPORT_EVERY, STATUS_EVERY): a wearable
# sends vitals every 10 s but only its battery every 10 min while it is on its charger; detectors
# and buttons send only their heartbeat and hourly battery.
REPORT_INTERVALS: dict[str, timedelta] = {
    DeviceType.MOTION_SENSOR: timedelta(minutes=1),
    DeviceType.DOOR_SENSOR: timedelta(minutes=10),
    DeviceType.ENV_SENSOR: timedelta(minutes=5),
    DeviceType.WEARABLE: timedelta(minutes=10),
    DeviceType.FALL_DETECTOR: timedelta(minutes=30),
    DeviceType.FLAME_DETECTOR: timedelta(minutes=30),
    DeviceType.GAS_VALVE: timedelta(minutes=1),
    DeviceType.PANIC_BUTTON: timedelta(minutes=30),
    DeviceType.BED_SENSOR: timedelta(minutes=1),
}


def is_registry_id(value: str) -> bool:
    """Whether a string may be a site or device id (one MQTT topic level)."""
    return bool(REGISTRY_ID_RE.match(value))
