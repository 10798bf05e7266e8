"""Run a simulation in real time against a broker until stopped, then shut down cleanly."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from simulator.clock import SimClock
from simulator.publisher import MqttPublisher
from simulator.simulation import Simulation
from simulator.stopping import stop_on_signals

log = logging.getLogger(__name__)

CHUNK = 2000  # messages published between two looks at commands and the stop flag
LAG_WARNING_SECONDS = 120.0  # simulated seconds behind before we say the host cannot keep up


@dataclass(frozen=True, slots=True)
class RunStats:
    """What a simulation run did."""

    messages: int
    events: int
    malformed: int
    commands: int
    seconds: float
    simulated_from: datetime
    simulated_until: datetime
    unacknowledged: int


def run_simulation(
    sim: Simulation,
    publisher: MqttPublisher,
    clock: SimClock,
    *,
    duration: float | None = None,
    count: int | None = None,
    stop: threading.Event | None = None,
    tick: float = 0.05,
    flush_timeout: float = 30.0,
) -> RunStats:
    """Publish the simulation as simulated time passes, until stop, duration or count."""
    stop = stop or threading.Event()
    started = time.monotonic()
    simulated_from = sim.now
    last_lag_warning = 0.0
    with stop_on_signals(stop):
        for topic in sim.command_topics():
            publisher.subscribe(topic)
        sim.start()
        while not stop.is_set():
            target = clock.now()
            budget = CHUNK if count is None else min(CHUNK, max(0, count - sim.messages))
            caught_up = sim.advance_to(target, max_messages=budget)
            _handle_commands(sim, publisher)
            if publisher.reconnected.is_set():
                publisher.reconnected.clear()
                sim.republish_statuses()
            if count is not None and sim.messages >= count:
                break
            if duration is not None and clock.real_elapsed() >= duration:
                break
            if caught_up:
                _wait_for_command(sim, publisher, tick)
            else:
                behind = (target - sim.now).total_seconds()
                now = time.monotonic()
                if behind > LAG_WARNING_SECONDS and now - last_lag_warning > 30:
                    last_lag_warning = now
                    log.warning(
                        "simulation is %.0f simulated seconds behind; lower --speed or raise "
                        "--interval",
                        behind,
                    )
        sim.stop()
        flushed = publisher.flush(flush_timeout)
    if not flushed:
        log.warning("%d messages were not acknowledged by the broker", publisher.outstanding)
    return RunStats(
        messages=sim.messages,
        events=sim.events,
        malformed=sim.malformed,
        commands=sim.commands,
        seconds=time.monotonic() - started,
        simulated_from=simulated_from,
        simulated_until=sim.now,
        unacknowledged=publisher.outstanding,
    )


def _handle_commands(sim: Simulation, publisher: MqttPublisher) -> None:
    while True:
        try:
            topic, payload = publisher.incoming.get_nowait()
        except queue.Empty:
            return
        sim.handle_command(topic, payload)


def _wait_for_command(sim: Simulation, publisher: MqttPublisher, tick: float) -> None:
    try:
        topic, payload = publisher.incoming.get(timeout=tick)
    except queue.Empty:
        return
    sim.handle_command(topic, payload)
