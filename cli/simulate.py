"""`iotcare simulate`: residents and their devices publishing over MQTT, or benchmark load."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import typer

from cli.context import ctx
from core.errors import IotCareError
from core.i18n import plural
from core.settings import MqttProtocol, parse_duration

if TYPE_CHECKING:
    from core.settings import Settings
    from simulator.load import LoadStats
    from simulator.runner import RunStats

# simulator.publisher.DEFAULT_INFLIGHT (a test keeps them equal): the simulator is imported when
# the command runs, not to build the command tree.
DEFAULT_INFLIGHT = 256

SCENARIO_HELP = (
    "Inject a scenario, NAME[:TARGET][@WHEN][+DURATION], e.g. fall:3@30m, night_exit:2@23:30, "
    "device_offline:sunrise-r05-env@1h+2h. Repeatable; --list-scenarios shows them all."
)


def simulate(
    site: str = typer.Option("sunrise", "--site", "-s", help="Site whose devices to simulate."),
    speed: float = typer.Option(
        1.0, "--speed", help="Simulated seconds per real second (60: a minute a second)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed, for a repeatable run."),
    interval: float = typer.Option(
        10.0, "--interval", help="Wearable telemetry interval, simulated seconds."
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help="Simulated start: HH:MM (site time, latest past) or RFC 3339. Default: now, or in "
        "the past for --speed above 1 so that simulated time never runs ahead of the clock.",
    ),
    scenario: list[str] | None = typer.Option(None, "--scenario", "-S", help=SCENARIO_HELP),
    duration: str | None = typer.Option(
        None, "--duration", "-d", help="Stop after this real time: 90s, 10m, 2h."
    ),
    count: int | None = typer.Option(None, "--count", "-n", min=1, help="Stop after N messages."),
    rate: float | None = typer.Option(
        None,
        "--rate",
        help="Load-generator mode: telemetry (3 readings) at N messages/s across the site's "
        "devices; 0 = as fast as possible.",
    ),
    mqtt_url: str | None = typer.Option(
        None, "--mqtt-url", help="Broker URL (default IOTCARE_MQTT_URL)."
    ),
    protocol: MqttProtocol = typer.Option(
        MqttProtocol.V311, "--protocol", help="MQTT version the simulated devices speak."
    ),
    inflight: int = typer.Option(
        DEFAULT_INFLIGHT, "--inflight", min=1, max=65535, help="QoS1 messages in flight."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Progress bar in load-generator mode."
    ),
    list_scenarios: bool = typer.Option(
        False, "--list-scenarios", help="List the scenarios and exit."
    ),
) -> None:
    """Simulate the residents and devices of a site over MQTT, or generate benchmark load."""
    from simulator.errors import SimulatorError
    from simulator.scenarios import KINDS

    c = ctx()
    if list_scenarios:
        typer.echo(c.t("cli.simulate.scenarios_header"))
        for name, kind in KINDS.items():
            typer.echo(f"  {name:<20} {kind.help}")
        return
    try:
        _run(
            c.settings,
            c.t,
            site=site,
            speed=speed,
            seed=seed,
            interval=interval,
            start=start,
            scenarios=scenario or [],
            duration=_seconds(duration),
            count=count,
            rate=rate,
            url=_broker_url(mqtt_url, c.settings),
            protocol=protocol,
            inflight=inflight,
            progress=progress,
        )
    except SimulatorError as error:
        raise IotCareError(c.t(f"cli.simulate.{error.key}", **error.params)) from None


def _seconds(text: str | None) -> float | None:
    from simulator.errors import SimulatorError

    if text is None:
        return None
    value = parse_duration(text)
    if not isinstance(value, timedelta) or value.total_seconds() <= 0:
        raise SimulatorError("bad_duration", f"Bad --duration '{text}'.", value=text)
    return value.total_seconds()


def _broker_url(option: str | None, settings: Settings) -> str:
    url = option or settings.mqtt_url
    if not url:
        raise IotCareError(ctx().t("cli.simulate.no_broker"))
    from simulator.publisher import parse_broker_url

    parse_broker_url(url)
    return url


def _run(
    settings: Settings,
    t: Callable[..., str],
    *,
    site: str,
    speed: float,
    seed: int | None,
    interval: float,
    start: str | None,
    scenarios: list[str],
    duration: float | None,
    count: int | None,
    rate: float | None,
    url: str,
    protocol: MqttProtocol,
    inflight: int,
    progress: bool,
) -> None:
    from core.db import session_scope
    from simulator.clock import SimClock, default_start, parse_start
    from simulator.errors import SimulatorError
    from simulator.load import load_targets, run_load
    from simulator.publisher import MqttPublisher, parse_broker_url
    from simulator.runner import run_simulation
    from simulator.scenarios import parse_scenario, resolve_scenario
    from simulator.simulation import Simulation
    from simulator.site_registry import load_site

    broker = parse_broker_url(url).label
    root = settings.mqtt_topic_root
    if rate is not None:
        if rate < 0:
            raise SimulatorError("bad_rate", "--rate must be 0 or more.", value=rate)
        c = ctx()
        with session_scope(c.sessions) as session:
            load_site(session, site)  # unknown site: a clear error
            targets = load_targets(session, site)
        typer.echo(
            t(
                "cli.simulate.load_start",
                devices=plural(t, "count.devices", len(targets)),
                site=site,
                rate=f"{rate:g}" if rate else "max",
                broker=broker,
            )
        )
        stats = run_load(
            url,
            root,
            targets,
            rate,
            count,
            duration,
            seed=seed or 0,
            progress=progress,
            client_id=f"iotcare-load-{site}-{uuid.uuid4().hex[:6]}",
            protocol=protocol,
            inflight=inflight,
            tls_ca_file=settings.mqtt_tls_ca_file,
            tls_insecure=settings.mqtt_tls_insecure,
        )
        _load_summary(t, stats)
        return

    if not speed > 0:
        raise SimulatorError("bad_speed", "--speed must be above 0.", value=speed)
    if not interval > 0:
        raise SimulatorError("bad_interval", "--interval must be above 0.", value=interval)
    parsed = [parse_scenario(text) for text in scenarios]
    c = ctx()
    with session_scope(c.sessions) as session:
        spec = load_site(session, site)
    resolved = [resolve_scenario(item, spec) for item in parsed]
    begin = parse_start(start, spec.timezone) if start else default_start(speed, duration)
    seed = seed if seed is not None else random.randrange(1_000_000)  # noqa: S311
    publisher = MqttPublisher(
        url,
        client_id=f"iotcare-sim-{site}-{uuid.uuid4().hex[:6]}",
        protocol=protocol,
        inflight=inflight,
        keepalive=settings.mqtt_keepalive,
        tls_ca_file=settings.mqtt_tls_ca_file,
        tls_insecure=settings.mqtt_tls_insecure,
    )
    sim = Simulation(
        spec,
        root,
        publisher,
        start=begin,
        seed=seed,
        interval=interval,
        scenarios=resolved,
        max_payload_bytes=settings.ingest_max_payload_bytes,
    )
    publisher.connect()
    try:
        typer.echo(
            t(
                "cli.simulate.start",
                site=spec.id,
                residents=plural(t, "count.residents", len(spec.residents)),
                devices=plural(t, "count.devices", len(spec.devices)),
                speed=f"{speed:g}",
                seed=seed,
                start=begin.isoformat(timespec="seconds"),
                broker=broker,
                topics=f"{root}/v1/{spec.id}/#",
            )
        )
        for item in resolved:
            typer.echo(t("cli.simulate.scenario", name=item.name, target=item.describe()))
        clock = SimClock(begin, speed)
        stats = run_simulation(
            sim, publisher, clock, duration=duration, count=count, stop=threading.Event()
        )
    finally:
        publisher.close()
    _sim_summary(t, stats)


def _sim_summary(t: Callable[..., str], stats: RunStats) -> None:
    typer.echo(
        t(
            "cli.simulate.stopped",
            messages=plural(t, "cli.simulate.count.messages", stats.messages),
            events=plural(t, "cli.simulate.count.events", stats.events),
            malformed=stats.malformed,
            commands=plural(t, "cli.simulate.count.commands", stats.commands),
            seconds=f"{stats.seconds:.1f}",
            until=stats.simulated_until.isoformat(timespec="seconds"),
        )
    )
    if stats.unacknowledged:
        typer.echo(plural(t, "cli.simulate.unacknowledged", stats.unacknowledged), err=True)


def _load_summary(t: Callable[..., str], stats: LoadStats) -> None:
    typer.echo(
        t(
            "cli.simulate.load_summary",
            published=plural(t, "count.messages", stats.published),
            readings=plural(t, "count.readings", stats.readings),
            seconds=f"{stats.seconds:.2f}",
            rate=f"{stats.rate:.0f}",
            target=f"{stats.target_rate:g}" if stats.target_rate else "max",
        )
    )
    if stats.unacknowledged:
        typer.echo(plural(t, "cli.simulate.unacknowledged", stats.unacknowledged), err=True)
