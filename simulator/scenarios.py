"""Scenarios injected into a simulation: falls, night exits, fire, gas, and misbehaving devices.

On the command line a scenario is `NAME[:TARGET][@WHEN][+DURATION]`:

* TARGET is a resident's 1-based index at the site (`fall:7`) or a device id
  (`device_offline:sunrise-r03-env`); without it, resident 1 or the site's first device fits.
* WHEN is an offset of simulated time from the start (`@30m`, `@2h`) or a local clock time
  (`@23:30`, the first such moment after the start); without it the scenario starts at once,
  except night_exit (next night) and long_inactivity (next daytime).
* DURATION (`+3h`) overrides how long the scenario lasts where that means something.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from core.contract.catalogue import DeviceType, EventType
from core.settings import parse_duration
from simulator.errors import SimulatorError
from simulator.residents import Activity
from simulator.site_registry import DeviceSpec, ResidentSpec, SiteSpec

if TYPE_CHECKING:
    from simulator.simulation import Simulation

log = logging.getLogger(__name__)

_SPEC_RE = re.compile(
    r"^(?P<name>[a-z_]+)(?::(?P<target>[A-Za-z0-9_-]+))?"
    r"(?:@(?P<when>[^+]+))?(?:\+(?P<duration>.+))?$"
)


@dataclass(frozen=True, slots=True)
class Kind:
    """What a scenario acts on and how long it lasts by default."""

    help: str
    target: str  # "resident", "device", or a device type's value (e.g. "gas_valve")
    needs: DeviceType | None = None  # device a resident must have
    duration: timedelta | None = None
    placement: str = "now"  # "now", "night" or "day"


KINDS: dict[str, Kind] = {
    "fall": Kind(
        "fall_detected event; the resident lies still on the floor for a while",
        "resident",
        DeviceType.FALL_DETECTOR,
        timedelta(minutes=15),
    ),
    "long_inactivity": Kind(
        "the resident stops moving for hours during the day",
        "resident",
        None,
        timedelta(hours=5),
        "day",
    ),
    "night_exit": Kind(
        "the resident leaves their room at night: door_opened event and door_open telemetry",
        "resident",
        DeviceType.DOOR_SENSOR,
        timedelta(minutes=20),
        "night",
    ),
    "panic": Kind("the resident presses the panic button", "resident", DeviceType.PANIC_BUTTON),
    "threshold_flapping": Kind(
        "the resident's heart rate swings around 120 bpm every 30 s",
        "resident",
        DeviceType.WEARABLE,
        timedelta(minutes=15),
    ),
    "flame": Kind(
        "flame_detected events from the kitchen flame detector, once a minute",
        DeviceType.FLAME_DETECTOR.value,
        None,
        timedelta(minutes=5),
    ),
    "gas_leak": Kind(
        "gas_ppm rises on the gas valve's sensor, then a gas_leak event, until it is closed",
        DeviceType.GAS_VALVE.value,
        None,
        timedelta(minutes=30),
    ),
    "device_offline": Kind(
        "a device falls silent and its status turns offline (for DURATION, else for good)",
        "device",
    ),
    "flapping": Kind(
        "a device's status toggles online/offline every 15-45 s",
        "device",
        None,
        timedelta(minutes=10),
    ),
    "malformed": Kind(
        "one of every kind of contract-breaking message (bad JSON, unknown metric, ...)",
        "device",
    ),
    "duplicates": Kind(
        "a device publishes each telemetry message twice", "device", None, timedelta(minutes=5)
    ),
    "out_of_order": Kind(
        "a device publishes telemetry in groups of four, newest first",
        "device",
        None,
        timedelta(minutes=5),
    ),
    "offline_buffer": Kind(
        "a device goes offline, buffers its readings, then flushes them as one batch",
        "device",
        None,
        timedelta(minutes=10),
    ),
}


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A scenario as written on the command line."""

    text: str
    name: str
    target: str | None = None
    offset: timedelta | None = None
    clock: time | None = None
    duration: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scenario bound to the resident and device it acts on."""

    spec: ScenarioSpec
    kind: Kind
    resident: ResidentSpec | None
    device: DeviceSpec
    duration: timedelta | None

    @property
    def name(self) -> str:
        """The scenario's name."""
        return self.spec.name

    def describe(self) -> str:
        """Who or what it acts on, for people."""
        if self.resident is not None:
            return f"resident {self.resident.index} ({self.resident.name}, {self.device.id})"
        return self.device.id


def parse_scenario(text: str) -> ScenarioSpec:
    """Parse NAME[:TARGET][@WHEN][+DURATION]; SimulatorError for unknown names or bad parts."""
    match = _SPEC_RE.match(text.strip())
    if match is None:
        name = text.split(":")[0].split("@")[0].split("+")[0]
        if name and name not in KINDS:
            raise _unknown(name)
        raise SimulatorError(
            "bad_scenario",
            f"Cannot read scenario '{text}': use NAME[:TARGET][@WHEN][+DURATION].",
            spec=text,
        )
    name = match["name"]
    if name not in KINDS:
        raise _unknown(name)
    offset: timedelta | None = None
    clock: time | None = None
    when = match["when"]
    if when is not None:
        if re.fullmatch(r"\d{1,2}:\d{2}", when):
            try:
                clock = time.fromisoformat(when.zfill(5))
            except ValueError:
                raise _bad(text) from None
        else:
            offset = _duration(when, text)
    duration = _duration(match["duration"], text) if match["duration"] is not None else None
    return ScenarioSpec(text, name, match["target"], offset, clock, duration)


def _duration(value: str, text: str) -> timedelta:
    parsed = parse_duration(value)
    if not isinstance(parsed, timedelta):
        raise _bad(text)
    return parsed


def _unknown(name: str) -> SimulatorError:
    known = ", ".join(KINDS)
    return SimulatorError(
        "unknown_scenario", f"Unknown scenario '{name}'; known: {known}.", name=name, known=known
    )


def _bad(text: str) -> SimulatorError:
    return SimulatorError(
        "bad_scenario",
        f"Cannot read scenario '{text}': use NAME[:TARGET][@WHEN][+DURATION], "
        "e.g. fall:3@30m or night_exit:2@23:30.",
        spec=text,
    )


def resolve_scenario(spec: ScenarioSpec, site: SiteSpec) -> Scenario:
    """Bind a scenario to its resident and device at a site; SimulatorError when none fits."""
    kind = KINDS[spec.name]
    resident: ResidentSpec | None = None
    device: DeviceSpec | None = None
    target = spec.target

    def unknown_target() -> SimulatorError:
        return SimulatorError(
            "unknown_target",
            f"Scenario {spec.name}: no resident or device '{target}' at site '{site.id}'.",
            target=target,
            scenario=spec.name,
            site=site.id,
        )

    def lacks(what: str) -> SimulatorError:
        return SimulatorError(
            "target_lacks_device",
            f"Scenario {spec.name}: '{target or 1}' has no {what} at site '{site.id}'.",
            target=target or "1",
            scenario=spec.name,
            device_type=what,
            site=site.id,
        )

    if kind.target == "resident":
        if target is None or target.isdigit():
            resident = site.resident(int(target or 1))
            if resident is None:
                raise unknown_target()
        else:
            found = site.device(target)
            if found is None:
                raise unknown_target()
            if found.resident_id is None:
                raise SimulatorError(
                    "needs_resident",
                    f"Scenario {spec.name} needs a resident; device '{target}' belongs to none.",
                    target=target,
                    scenario=spec.name,
                )
            resident = site.resident_by_id(found.resident_id)
            assert resident is not None
        if kind.needs is not None:
            device = resident.devices.get(kind.needs)
            if device is None:
                raise lacks(kind.needs.value)
        else:
            device = next(iter(resident.devices.values()), None)
            if device is None:
                raise lacks("device")
    elif kind.target == "device":
        if target is None or target.isdigit():
            index = int(target or 1)
            resident = site.resident(index)
            if resident is None and target is not None:
                raise unknown_target()
            if resident is not None:
                device = resident.devices.get(DeviceType.WEARABLE) or next(
                    iter(resident.devices.values()), None
                )
                resident = resident if device is not None else None
            if device is None:
                device = site.devices[0]
        else:
            device = site.device(target)
            if device is None:
                raise unknown_target()
            if device.resident_id is not None:
                resident = site.resident_by_id(device.resident_id)
    else:
        wanted = DeviceType(kind.target)
        if target is None:
            device = site.first_of(wanted)
            if device is None:
                raise lacks(wanted.value)
        else:
            device = site.device(target)
            if device is None:
                raise unknown_target()
            if device.type is not wanted:
                raise lacks(wanted.value)
    assert device is not None
    return Scenario(spec, kind, resident, device, spec.duration or kind.duration)


def first_time(scenario: Scenario, start: datetime, timezone: str) -> datetime:
    """When a scenario begins, from its @WHEN or its kind's placement."""
    spec = scenario.spec
    zone = ZoneInfo(
        scenario.resident.timezone if scenario.resident and scenario.resident.timezone else timezone
    )
    if spec.offset is not None:
        return start + spec.offset
    local = start.astimezone(zone)
    if spec.clock is not None:
        return _next_clock(local, spec.clock)
    if scenario.kind.placement == "night":
        if local.time() >= time(22, 30) or local.time() < time(4, 30):
            return start
        return _next_clock(local, time(23, 30))
    if scenario.kind.placement == "day":
        active_start, active_end = (
            (scenario.resident.active_start, scenario.resident.active_end)
            if scenario.resident
            else (time(7, 0), time(22, 0))
        )
        latest = (datetime.combine(local.date(), active_end) - timedelta(hours=5)).time()
        if time(9, 0) <= local.time() <= max(latest, time(9, 0)) and active_start < active_end:
            return start
        return _next_clock(local, time(9, 30))
    return start


def _next_clock(local: datetime, clock: time) -> datetime:
    candidate = datetime.combine(local.date(), clock, tzinfo=local.tzinfo)
    if candidate < local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


# --- what each scenario does when its time comes


def apply(scenario: Scenario, sim: Simulation, ts: float) -> None:
    """Start a scenario at simulated time ts."""
    log.info(
        "scenario %s starts for %s",
        scenario.name,
        scenario.describe(),
        extra={"scenario": scenario.name, "device": scenario.device.id},
    )
    sim.scenario_started(scenario, ts)
    _ACTIONS[scenario.name](scenario, sim, ts)


def _end(scenario: Scenario, ts: float) -> float | None:
    return None if scenario.duration is None else ts + scenario.duration.total_seconds()


def _life_override(activity: Activity) -> Callable[[Scenario, Simulation, float], None]:
    def action(scenario: Scenario, sim: Simulation, ts: float) -> None:
        assert scenario.resident is not None
        until = _end(scenario, ts)
        assert until is not None
        sim.override_activity(scenario.resident.id, activity, ts, until)

    return action


def _fall(scenario: Scenario, sim: Simulation, ts: float) -> None:
    _life_override(Activity.FALLEN)(scenario, sim, ts)
    rng = sim.device(scenario.device.id).rng
    sim.emit_event(
        scenario.device.id,
        ts,
        EventType.FALL_DETECTED,
        {
            "confidence": round(rng.uniform(0.86, 0.99), 2),
            "impact_g": round(rng.uniform(2.2, 4.5), 1),
            "posture": "lying",
        },
    )


def _panic(scenario: Scenario, sim: Simulation, ts: float) -> None:
    sim.emit_event(scenario.device.id, ts, EventType.BUTTON_PRESSED, {"press": "single"})


def _threshold_flapping(scenario: Scenario, sim: Simulation, ts: float) -> None:
    assert scenario.resident is not None
    life = sim.life(scenario.resident.id)
    until = _end(scenario, ts)
    assert until is not None
    high = [True]

    def flip(now: float) -> None:
        if now >= until:
            life.heart_override = None
            return
        rng = sim.device(scenario.device.id).rng
        life.heart_override = rng.randint(122, 127) if high[0] else rng.randint(113, 118)
        high[0] = not high[0]
        sim.at(now + 30, flip)

    flip(ts)


def _flame(scenario: Scenario, sim: Simulation, ts: float) -> None:
    until = _end(scenario, ts) or ts
    rng = sim.device(scenario.device.id).rng

    def burn(now: float) -> None:
        sim.emit_event(
            scenario.device.id,
            now,
            EventType.FLAME_DETECTED,
            {"intensity": round(rng.uniform(0.6, 0.95), 2), "zone": "stove"},
        )
        if now + 60 < until:
            sim.at(now + 60, burn)

    burn(ts)


def _gas_leak(scenario: Scenario, sim: Simulation, ts: float) -> None:
    until = _end(scenario, ts)
    assert until is not None
    sim.valve(scenario.device.id).start_leak(ts, until)
    sim.report_now(scenario.device.id, ts)


def _device_offline(scenario: Scenario, sim: Simulation, ts: float) -> None:
    sim.set_online(scenario.device.id, ts, online=False)
    until = _end(scenario, ts)
    if until is not None:
        sim.at(until, lambda now: sim.set_online(scenario.device.id, now, online=True))


def _flapping(scenario: Scenario, sim: Simulation, ts: float) -> None:
    device = sim.device(scenario.device.id)
    until = _end(scenario, ts)
    assert until is not None

    def toggle(now: float) -> None:
        if now >= until:
            sim.set_online(scenario.device.id, now, online=True)
            return
        sim.set_online(scenario.device.id, now, online=not device.online)
        sim.at(now + device.rng.uniform(15, 45), toggle)

    toggle(ts)


def _malformed(scenario: Scenario, sim: Simulation, ts: float) -> None:
    sim.publish_malformed(scenario.device.id)


def _duplicates(scenario: Scenario, sim: Simulation, ts: float) -> None:
    until = _end(scenario, ts)
    assert until is not None
    sim.device(scenario.device.id).duplicate_until = until


def _out_of_order(scenario: Scenario, sim: Simulation, ts: float) -> None:
    until = _end(scenario, ts)
    assert until is not None
    sim.device(scenario.device.id).reorder_until = until
    sim.at(until, lambda now: sim.release_reordered(scenario.device.id))


def _offline_buffer(scenario: Scenario, sim: Simulation, ts: float) -> None:
    until = _end(scenario, ts)
    assert until is not None
    sim.start_buffering(scenario.device.id, ts)
    sim.at(until, lambda now: sim.flush_buffer(scenario.device.id, now))


_ACTIONS: dict[str, Callable[[Scenario, Simulation, float], None]] = {
    "fall": _fall,
    "long_inactivity": _life_override(Activity.INACTIVE),
    "night_exit": _life_override(Activity.WANDERING),
    "panic": _panic,
    "threshold_flapping": _threshold_flapping,
    "flame": _flame,
    "gas_leak": _gas_leak,
    "device_offline": _device_offline,
    "flapping": _flapping,
    "malformed": _malformed,
    "duplicates": _duplicates,
    "out_of_order": _out_of_order,
    "offline_buffer": _offline_buffer,
}
assert set(_ACTIONS) == set(KINDS)
