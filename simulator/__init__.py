"""Device simulator: residents living their days, the devices that watch them, and faults.

Modules: site_registry (what is registered), residents (daily life and vitals), device_state
(battery, radio, faults), valve (the gas valve obeying commands), scenarios (injected incidents),
malformed (contract-breaking messages), simulation (the engine), clock (simulated time),
publisher (one MQTT client for all devices), runner (real-time loop), load (benchmark load).
"""

from simulator.clock import SimClock, default_start, parse_start
from simulator.errors import SimulatorError
from simulator.load import LoadStats, LoadTarget, load_targets, run_load
from simulator.publisher import MqttPublisher
from simulator.runner import RunStats, run_simulation
from simulator.scenarios import KINDS, Scenario, parse_scenario, resolve_scenario
from simulator.simulation import ListSink, Message, Simulation
from simulator.site_registry import DeviceSpec, ResidentSpec, SiteSpec, load_site

__all__ = [
    "KINDS",
    "DeviceSpec",
    "ListSink",
    "LoadStats",
    "LoadTarget",
    "Message",
    "MqttPublisher",
    "ResidentSpec",
    "RunStats",
    "Scenario",
    "SimClock",
    "Simulation",
    "SimulatorError",
    "SiteSpec",
    "default_start",
    "load_site",
    "load_targets",
    "parse_scenario",
    "parse_start",
    "resolve_scenario",
    "run_load",
    "run_simulation",
]
