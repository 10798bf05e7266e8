"""What each simulated device carries: battery, radio, firmware, sequence numbers, fault flags."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from core.contract.catalogue import DeviceType
from core.contract.payloads import status_payload
from simulator.site_registry import DeviceSpec

FIRMWARE: dict[DeviceType, str] = {
    DeviceType.MOTION_SENSOR: "pir-1.4.2",
    DeviceType.DOOR_SENSOR: "reed-1.2.0",
    DeviceType.ENV_SENSOR: "env-2.1.5",
    DeviceType.WEARABLE: "band-3.0.7",
    DeviceType.FALL_DETECTOR: "radar-1.9.1",
    DeviceType.FLAME_DETECTOR: "ir-flame-1.1.3",
    DeviceType.GAS_VALVE: "valve-2.4.0",
    DeviceType.PANIC_BUTTON: "sos-1.0.9",
    DeviceType.BED_SENSOR: "bcg-2.2.1",
}

# Battery used per simulated hour, in percent; None: mains powered (no battery to report).
DRAIN_PER_HOUR: dict[DeviceType, float | None] = {
    DeviceType.MOTION_SENSOR: 0.004,
    DeviceType.DOOR_SENSOR: 0.003,
    DeviceType.ENV_SENSOR: 0.006,
    DeviceType.WEARABLE: 0.5,
    DeviceType.FALL_DETECTOR: 0.004,
    DeviceType.FLAME_DETECTOR: 0.003,
    DeviceType.GAS_VALVE: None,
    DeviceType.PANIC_BUTTON: 0.002,
    DeviceType.BED_SENSOR: 0.003,
}

Sample = tuple[datetime, dict[str, float | bool], int | None]


@dataclass(slots=True)
class DeviceState:
    """A device's changing state and the faults scenarios inject into it."""

    spec: DeviceSpec
    rng: random.Random
    battery: float | None
    rssi_base: int
    firmware: str
    seq: int = 0
    online: bool = True
    door_open: bool = False
    charging: bool = False
    last_battery_report: float = float("-inf")
    # Faults.
    silent: bool = False  # publishes nothing (offline, or the offline half of a flap)
    buffer: list[Sample] | None = None  # offline with a buffer, flushed as a batch
    duplicate_until: float = float("-inf")
    reorder_until: float = float("-inf")
    reorder_held: list[bytes] = field(default_factory=list)

    @classmethod
    def create(cls, spec: DeviceSpec, seed: int) -> DeviceState:
        """A device with its own deterministic random stream, battery and signal strength."""
        rng = random.Random(f"{seed}:device:{spec.id}")  # noqa: S311 - reproducible, not security
        drain = DRAIN_PER_HOUR[spec.type]
        if drain is None:
            battery = None
        elif spec.type is DeviceType.WEARABLE:
            battery = rng.uniform(70, 100)
        else:
            battery = rng.uniform(55, 100)
        return cls(
            spec=spec,
            rng=rng,
            battery=battery,
            rssi_base=rng.randint(-82, -52),
            firmware=FIRMWARE[spec.type],
        )

    @property
    def battery_pct(self) -> int | None:
        """Battery as a whole percentage, as devices report it."""
        return None if self.battery is None else round(self.battery)

    def rssi(self) -> int:
        """Signal strength now, in dBm."""
        return max(-100, min(-30, self.rssi_base + self.rng.randint(-3, 3)))

    def drain(self, hours: float) -> None:
        """Use (or, while charging, gain) battery over some simulated hours."""
        drain = DRAIN_PER_HOUR[self.spec.type]
        if self.battery is None or drain is None:
            return
        if self.charging:
            self.battery = min(100.0, self.battery + 60 * hours)
        else:
            self.battery = max(0.0, self.battery - drain * hours)

    def status(self, online: bool, extra: dict[str, str] | None = None) -> bytes:
        """The device's status message (retained by the broker)."""
        payload = status_payload(online, self.firmware, self.battery_pct, self.rssi())
        if extra:
            payload = orjson.dumps({**orjson.loads(payload), **extra})
        return payload
