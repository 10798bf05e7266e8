"""The simulation engine: residents and devices stepped through simulated time, in order.

A discrete-event simulation: every report, life step and scenario is a timer on one heap, run in
time order. What is published depends only on the seed, the start and the scenarios, never on
how fast the host runs, so a run can be replayed and tested without a broker.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core.contract.catalogue import DeviceType, EventType
from core.contract.errors import ContractError
from core.contract.payloads import batch_payload, event_payload, telemetry_payload
from core.contract.topics import TopicKind, device_topic, parse_topic
from core.timeutil import utcnow
from simulator import scenarios as scenario_actions
from simulator.device_state import DeviceState
from simulator.errors import SimulatorError
from simulator.malformed import malformed_cases
from simulator.residents import Activity, ResidentLife
from simulator.scenarios import Scenario
from simulator.site_registry import SiteSpec
from simulator.valve import CommandResult, GasValve

log = logging.getLogger(__name__)

LIFE_STEP = 60.0  # seconds of simulated time between two steps of every resident's life
STATUS_EVERY = 1800.0
BATCH_CHUNK = 500  # samples per {"batch": [...]} message when a buffer is flushed
VALVE_LEAK_INTERVAL = 10.0

# Report period per device type, in simulated seconds (the wearable's comes from --interval).
REPORT_EVERY: dict[DeviceType, float] = {
    DeviceType.MOTION_SENSOR: 60,
    DeviceType.DOOR_SENSOR: 600,
    DeviceType.ENV_SENSOR: 300,
    DeviceType.WEARABLE: 10,
    DeviceType.FALL_DETECTOR: 3600,
    DeviceType.FLAME_DETECTOR: 3600,
    DeviceType.GAS_VALVE: 60,
    DeviceType.PANIC_BUTTON: 3600,
    DeviceType.BED_SENSOR: 60,
}
BATTERY_EVERY: dict[DeviceType, float] = {DeviceType.WEARABLE: 600}
_BATTERY_DEFAULT = 3600.0


class Sink(Protocol):
    """Where the simulation's messages go (an MQTT publisher, or a list in tests)."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Send one message."""


@dataclass(frozen=True, slots=True)
class Message:
    """One published message."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass
class ListSink:
    """Collects messages in memory (tests, dry runs)."""

    messages: list[Message] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Keep the message."""
        self.messages.append(Message(topic, payload, retain))


@dataclass
class StartedScenario:
    """A scenario that has begun, for the run's report."""

    name: str
    target: str
    at: datetime


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Simulation:
    """A site's residents and devices living through simulated time."""

    def __init__(
        self,
        site: SiteSpec,
        root: str,
        sink: Sink,
        *,
        start: datetime,
        seed: int = 0,
        interval: float = 10.0,
        scenarios: Sequence[Scenario] = (),
        max_payload_bytes: int = 262_144,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        if not interval > 0 or not math.isfinite(interval):
            raise SimulatorError(
                "bad_interval", "--interval must be a number of seconds above 0.", value=interval
            )
        self.site = site
        self.root = root
        self.sink = sink
        self.seed = seed
        self.start_ts = start.timestamp()
        self.now_ts = self.start_ts
        self.max_payload_bytes = max_payload_bytes
        self.scenarios = list(scenarios)
        self._wall = wall
        self._rng = random.Random(f"{seed}:site:{site.id}")  # noqa: S311 - reproducible
        self._zone = ZoneInfo(site.timezone)
        self._every = dict(REPORT_EVERY)
        self._every[DeviceType.WEARABLE] = interval
        for kind in self._every:
            self._every[kind] = max(self._every[kind], interval)
        self._devices = {d.id: DeviceState.create(d, seed) for d in site.devices}
        self._lives = {r.id: ResidentLife(r, site.timezone, seed) for r in site.residents}
        self._valves = {
            d.id: GasValve(d.id, self._devices[d.id].rng, self.start_ts)
            for d in site.devices
            if d.type is DeviceType.GAS_VALVE
        }
        self._topics = {
            (d.id, kind): device_topic(root, site.id, d.id, kind)
            for d in site.devices
            for kind in TopicKind
        }
        self._co2 = {
            d.id: self._rng.uniform(420, 520)
            for d in site.devices
            if d.type is DeviceType.ENV_SENSOR
        }
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()
        self._started = False
        self.messages = 0
        self.events = 0
        self.malformed = 0
        self.commands = 0
        self.started_scenarios: list[StartedScenario] = []

    # --- the engine

    @property
    def now(self) -> datetime:
        """The simulated time reached."""
        return _utc(self.now_ts)

    def at(self, ts: float, action: Callable[[float], None]) -> None:
        """Run an action at a simulated time (timers at equal times run in the order set)."""
        heapq.heappush(self._heap, (ts, next(self._order), action))

    def start(self) -> None:
        """Publish every device's retained online status and set every timer going."""
        if self._started:
            return
        self._started = True
        t0 = self.start_ts
        for device_id in self._devices:
            self._publish_status(device_id)
        for life in self._lives.values():
            life.step(t0)  # where everyone is at the start; no door events for that
            life.moved = False
        self.at(t0 + LIFE_STEP, self._life_step)
        for device_id, device in self._devices.items():
            period = self._every[device.spec.type]
            self.at(t0 + self._rng.uniform(0, period), self._reporter(device_id))
            self.at(
                t0 + self._rng.uniform(STATUS_EVERY / 2, STATUS_EVERY), self._heartbeat(device_id)
            )
        for scenario in self.scenarios:
            begin = scenario_actions.first_time(scenario, self.now, self.site.timezone)
            self.at(
                max(t0, begin.timestamp()),
                lambda ts, s=scenario: scenario_actions.apply(s, self, ts),
            )

    def advance_to(self, until: datetime | float, max_messages: int | None = None) -> bool:
        """Run every timer due up to a time; False when stopped early by max_messages."""
        limit = until.timestamp() if isinstance(until, datetime) else until
        first = self.messages
        heap = self._heap
        while heap and heap[0][0] <= limit:
            if max_messages is not None and self.messages - first >= max_messages:
                return False
            ts, _, action = heapq.heappop(heap)
            self.now_ts = ts
            action(ts)
        self.now_ts = max(self.now_ts, limit)
        return True

    def stop(self) -> None:
        """Publish what devices still hold, then every device's retained offline status."""
        for device_id, device in self._devices.items():
            if device.reorder_held:
                self.release_reordered(device_id)
            if device.buffer:
                self.flush_buffer(device_id, self.now_ts, come_online=False)
        for device_id, device in self._devices.items():
            device.online = False
            self._publish_status(device_id)

    def republish_statuses(self) -> None:
        """Publish the retained status of every online device again (after a reconnect)."""
        for device_id, device in self._devices.items():
            if device.online:
                self._publish_status(device_id)

    def command_topics(self) -> list[str]:
        """The cmd topics the simulated actuators listen on."""
        return [self._topics[(valve, TopicKind.CMD)] for valve in self._valves]

    def handle_command(
        self, topic: str, payload: bytes, now: datetime | None = None
    ) -> CommandResult | None:
        """A command arrived for an actuator: act, acknowledge, and report the new state."""
        try:
            device_id = parse_topic(topic, self.root).device
        except ContractError:
            return None
        valve = self._valves.get(device_id)
        if valve is None:
            return None
        if self._devices[device_id].silent:
            log.info("valve %s is offline; command not seen", device_id)
            return None
        valve.advance(self.now_ts)
        result = valve.handle_command(payload, now or self._wall())
        if result is None:
            return None
        self.commands += 1
        self._publish(self._topics[(device_id, TopicKind.CMD_ACK)], result.ack)
        log.info(
            "valve %s: %s -> %s (valve %s)",
            device_id,
            result.command,
            "ok" if result.ok else "error",
            valve.state,
            extra={"device": device_id, "command_id": str(result.command_id)},
        )
        if result.changed:
            self._publish_status(device_id)
            self.report_now(device_id, self.now_ts)
        return result

    # --- what scenarios use

    def device(self, device_id: str) -> DeviceState:
        """A simulated device's state."""
        return self._devices[device_id]

    def life(self, resident_id: int) -> ResidentLife:
        """A resident's life model."""
        return self._lives[resident_id]

    def valve(self, device_id: str) -> GasValve:
        """A simulated gas valve."""
        return self._valves[device_id]

    def scenario_started(self, scenario: Scenario, ts: float) -> None:
        """Record that a scenario began."""
        self.started_scenarios.append(StartedScenario(scenario.name, scenario.describe(), _utc(ts)))

    def override_activity(
        self, resident_id: int, activity: Activity, ts: float, until: float
    ) -> None:
        """Make a resident do something off-plan from ts until `until`."""
        life = self._lives[resident_id]
        life.override(activity, until)
        if life.step(ts):
            self._door_crossing(resident_id, ts, delay=0.0)

        def back(now: float) -> None:
            # Back to the plan at once (unless another scenario took over meanwhile).
            if life.overriding in (None, (activity, until)) and life.step(now):
                self._door_crossing(resident_id, now, delay=0.0)

        self.at(until, back)

    def emit_event(
        self, device_id: str, ts: float, event_type: EventType, data: dict[str, Any] | None = None
    ) -> None:
        """Publish an event from a device (lost if the device is offline)."""
        if self._devices[device_id].silent:
            log.debug("event %s from offline device %s lost", event_type, device_id)
            return
        self.events += 1
        self._publish(
            self._topics[(device_id, TopicKind.EVENT)], event_payload(_utc(ts), event_type, data)
        )

    def report_now(self, device_id: str, ts: float) -> None:
        """Publish a device's telemetry at once, outside its schedule."""
        readings = self._readings(self._devices[device_id], ts)
        if readings:
            self._telemetry(self._devices[device_id], ts, readings)

    def set_online(self, device_id: str, ts: float, *, online: bool) -> None:
        """Bring a device on- or offline; its retained status says so (as its will would)."""
        device = self._devices[device_id]
        if device.online == online:
            return
        device.online = online
        device.silent = not online
        self._publish_status(device_id)

    def start_buffering(self, device_id: str, ts: float) -> None:
        """The device loses its connection but keeps its readings."""
        self._devices[device_id].buffer = []
        self.set_online(device_id, ts, online=False)

    def flush_buffer(self, device_id: str, ts: float, *, come_online: bool = True) -> None:
        """The device reconnects and sends what it buffered as {"batch": [...]} messages."""
        device = self._devices[device_id]
        samples, device.buffer = device.buffer or [], None
        if come_online:
            self.set_online(device_id, ts, online=True)
        topic = self._topics[(device_id, TopicKind.TELEMETRY)]
        for first in range(0, len(samples), BATCH_CHUNK):
            self._publish(topic, batch_payload(samples[first : first + BATCH_CHUNK]))

    def release_reordered(self, device_id: str) -> None:
        """Publish held telemetry newest first (older timestamps after newer ones)."""
        device = self._devices[device_id]
        held, device.reorder_held = device.reorder_held, []
        topic = self._topics[(device_id, TopicKind.TELEMETRY)]
        for payload in reversed(held):
            self._publish(topic, payload)

    def publish_malformed(self, device_id: str) -> None:
        """Publish one message of every contract-breaking kind as if from this device."""
        for case in malformed_cases(
            self.root, self.site.id, device_id, self.now, self.max_payload_bytes, self._wall()
        ):
            self.malformed += 1
            self._publish(case.topic, case.payload)

    # --- timers

    def _life_step(self, ts: float) -> None:
        hours = LIFE_STEP / 3600
        for device in self._devices.values():
            device.drain(hours)
        for resident in self.site.residents:
            life = self._lives[resident.id]
            if life.step(ts):
                self._door_crossing(resident.id, ts)
            wearable = resident.devices.get(DeviceType.WEARABLE)
            if wearable is not None:
                self._charge(self._devices[wearable.id], life, ts)
            env = resident.devices.get(DeviceType.ENV_SENSOR)
            if env is not None:
                occupied = 7.0 if life.in_room else 0.0
                co2 = self._co2[env.id]
                self._co2[env.id] = co2 + occupied - (co2 - 420) * 0.03
        self.at(ts + LIFE_STEP, self._life_step)

    def _charge(self, wearable: DeviceState, life: ResidentLife, ts: float) -> None:
        # Staff put a low wristband on its charger while the resident has breakfast.
        at_breakfast = (
            life.activity is Activity.MEAL and datetime.fromtimestamp(ts, life.zone).hour < 10
        )
        if at_breakfast and wearable.battery is not None and wearable.battery < 30:
            wearable.charging = True
        elif wearable.charging and (not at_breakfast or (wearable.battery or 0) >= 100):
            wearable.charging = False

    def _door_crossing(self, resident_id: int, ts: float, delay: float | None = None) -> None:
        resident = next(r for r in self.site.residents if r.id == resident_id)
        door = resident.devices.get(DeviceType.DOOR_SENSOR)
        if door is None:
            return
        device = self._devices[door.id]
        opened = ts + (device.rng.uniform(0, 20) if delay is None else delay)
        closed = opened + device.rng.uniform(6, 20)
        self.at(opened, lambda now: self._door(door.id, now, True))
        self.at(closed, lambda now: self._door(door.id, now, False))

    def _door(self, device_id: str, ts: float, is_open: bool) -> None:
        device = self._devices[device_id]
        if device.door_open == is_open:
            return
        device.door_open = is_open
        self._telemetry(device, ts, {"door_open": is_open})
        if is_open:
            self.emit_event(device_id, ts, EventType.DOOR_OPENED, {})

    def _reporter(self, device_id: str) -> Callable[[float], None]:
        device = self._devices[device_id]
        valve = self._valves.get(device_id)

        def report(ts: float) -> None:
            readings = self._readings(device, ts)
            if readings:
                self._telemetry(device, ts, readings)
            period = self._every[device.spec.type]
            if valve is not None:
                if valve.alarm_due(ts):
                    self.emit_event(
                        device_id,
                        ts,
                        EventType.GAS_LEAK,
                        {"gas_ppm": readings.get("gas_ppm"), "valve": valve.state},
                    )
                if valve.leaking(ts) or valve.ppm > 20:
                    period = min(period, VALVE_LEAK_INTERVAL)
            self.at(ts + period, report)

        return report

    def _heartbeat(self, device_id: str) -> Callable[[float], None]:
        def beat(ts: float) -> None:
            if self._devices[device_id].online:
                self._publish_status(device_id)
            self.at(ts + STATUS_EVERY, beat)

        return beat

    # --- readings

    def _readings(self, device: DeviceState, ts: float) -> dict[str, float | bool]:
        spec = device.spec
        life = self._lives.get(spec.resident_id) if spec.resident_id is not None else None
        rng = device.rng
        readings: dict[str, float | bool] = {}
        kind = spec.type
        if kind is DeviceType.WEARABLE:
            if life is not None and not device.charging:
                readings.update(life.vitals(ts))
        elif kind is DeviceType.BED_SENSOR:
            in_bed = life is not None and life.in_bed
            readings["bed_occupied"] = in_bed
            if in_bed and life is not None:
                readings["heart_rate"] = life.bed_heart_rate()
        elif kind is DeviceType.MOTION_SENSOR:
            if life is not None:
                readings["motion"] = life.take_motion()
            else:
                hour = _utc(ts).astimezone(self._zone).hour
                readings["motion"] = rng.random() < (0.25 if 7 <= hour < 22 else 0.02)
        elif kind is DeviceType.DOOR_SENSOR:
            readings["door_open"] = device.door_open
        elif kind is DeviceType.ENV_SENSOR:
            readings.update(self._climate(device, life, ts))
        elif kind is DeviceType.GAS_VALVE:
            readings.update(self._valves[spec.id].reading(ts))
        every = BATTERY_EVERY.get(kind, _BATTERY_DEFAULT)
        if device.battery is not None and ts - device.last_battery_report >= every - 1e-6:
            readings["battery_pct"] = device.battery_pct or 0
            device.last_battery_report = ts
        return readings

    def _climate(
        self, device: DeviceState, life: ResidentLife | None, ts: float
    ) -> dict[str, float | bool]:
        rng = device.rng
        zone = life.zone if life is not None else self._zone
        local = datetime.fromtimestamp(ts, zone)
        hour = local.hour + local.minute / 60
        occupied = life is not None and life.in_room
        temperature = 22.4 + 0.8 * math.sin(2 * math.pi * (hour - 9) / 24)
        temperature += (0.4 if occupied else 0.0) + rng.gauss(0, 0.15)
        humidity = 46 + 4 * math.sin(2 * math.pi * (hour - 3) / 24) + rng.gauss(0, 1.0)
        if life is not None and life.activity in (Activity.BATHROOM, Activity.GETTING_READY):
            humidity += 6
        co2 = self._co2.get(device.spec.id, 450.0) + rng.gauss(0, 8)
        return {
            "temperature_c": round(temperature, 1),
            "humidity_pct": round(max(25.0, min(75.0, humidity)), 1),
            "co2_ppm": round(max(400.0, min(3000.0, co2))),
        }

    # --- publishing

    def _telemetry(self, device: DeviceState, ts: float, readings: dict[str, float | bool]) -> None:
        if device.silent:
            if device.buffer is not None:
                device.seq += 1
                device.buffer.append((_utc(ts), readings, device.seq))
            return
        device.seq += 1
        payload = telemetry_payload(_utc(ts), readings, device.seq)
        topic = self._topics[(device.spec.id, TopicKind.TELEMETRY)]
        if ts < device.reorder_until:
            device.reorder_held.append(payload)
            if len(device.reorder_held) >= 4:
                self.release_reordered(device.spec.id)
            return
        self._publish(topic, payload)
        if ts < device.duplicate_until:
            self._publish(topic, payload)

    def _publish_status(self, device_id: str) -> None:
        device = self._devices[device_id]
        valve = self._valves.get(device_id)
        extra = {"valve": valve.state} if valve is not None else None
        self._publish(
            self._topics[(device_id, TopicKind.STATUS)], device.status(device.online, extra), True
        )

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.messages += 1
        self.sink.publish(topic, payload, retain)
