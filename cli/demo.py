"""`iotcare demo`: the whole system on one machine, with the embedded database and broker."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING

import typer

from api import DOCS_URL
from cli.context import ctx
from cli.ports import port_free
from cli.seed import print_logins
from cli.supervisor import ProcessGroup
from core.timeutil import ensure_utc, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from ingest.broker import EmbeddedBroker

DEMO_INGEST_CLIENT = "iotcare-ingest-demo"
# Longest wait for ingest to connect before the simulator starts anyway (its replica records
# its state every few seconds: IOTCARE_INGEST_HEARTBEAT_INTERVAL, 5 s while not yet healthy).
INGEST_READY_SECONDS = 30.0
# A fall one simulated minute in, a gas leak (closed by the valve automatically) two later.
DEFAULT_SCENARIOS = ("fall:3@1m", "gas_leak@3m")


def ingest_connected(sessions: sessionmaker[Session], since: datetime) -> bool:
    """Whether the demo's ingest replica has recorded, since `since`, that it is connected."""
    from sqlalchemy import select

    from models import IngestReplica

    with sessions() as session:
        replica = session.scalar(
            select(IngestReplica).where(IngestReplica.client_id == DEMO_INGEST_CLIENT)
        )
        return (
            replica is not None and replica.connected and ensure_utc(replica.heartbeat_at) >= since
        )


class AlertFeed:
    """Prints each alert opened and each valve command sent since `since`, once, as the inbox
    would show it (earlier runs' and seeded history's alerts are not news)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        t: Callable[..., str],
        language: str,
        default_timezone: str,
        since: datetime,
    ) -> None:
        self.sessions = sessions
        self.t = t
        self.language = language
        self.default_timezone = default_timezone
        self.since = ensure_utc(since)
        self.seen_alerts: set[object] = set()
        self.seen_commands: set[tuple[object, str]] = set()

    def poll(self) -> None:
        """Show what is new since the last poll."""
        from sqlalchemy import select

        from core.notify.render import alert_facts, describe_what, describe_who, local_time
        from models import Alert, Command, CommandStatus

        with self.sessions() as session:
            alerts = select(Alert).where(Alert.opened_at >= self.since).order_by(Alert.opened_at)
            for alert in session.scalars(alerts):
                if alert.id in self.seen_alerts:
                    continue
                self.seen_alerts.add(alert.id)
                facts = alert_facts(session, alert, self.default_timezone)
                typer.secho(
                    self.t(
                        "cli.demo.alert",
                        severity=facts.severity.upper(),
                        what=describe_what(facts, self.language),
                        who=describe_who(facts, self.language),
                        at=local_time(facts.opened_at, facts.timezone),
                    ),
                    fg=typer.colors.RED if facts.severity == "critical" else typer.colors.YELLOW,
                )
            commands = (
                select(Command).where(Command.created_at >= self.since).order_by(Command.created_at)
            )
            for command in session.scalars(commands):
                key = (command.id, command.status.value)
                if key in self.seen_commands or command.status is CommandStatus.PENDING:
                    continue
                self.seen_commands.add(key)
                typer.echo(
                    self.t(
                        f"cli.demo.command_{command.status.value}",
                        command=command.command,
                        device=command.device_id,
                    )
                )


def demo(
    broker_port: int = typer.Option(
        1883, "--broker-port", help="Port of the embedded broker (another is used if busy)."
    ),
    speed: float = typer.Option(
        1.0, "--speed", help="Simulator speed: simulated seconds per real second."
    ),
    run_for: float | None = typer.Option(
        None, "--run-for", help="Stop by itself after this many seconds (default: Ctrl-C)."
    ),
    scenario: list[str] | None = typer.Option(
        None,
        "--scenario",
        "-S",
        help="Simulator scenarios to inject (default: a fall after 1 minute and a gas leak "
        "after 3, simulated time); see `iotcare simulate --list-scenarios`.",
    ),
    no_scenarios: bool = typer.Option(False, "--no-scenarios", help="Only everyday life."),
    with_flows: bool = typer.Option(
        True, "--flows/--no-flows", help="Also serve the scheduled flows (and the Prefect UI)."
    ),
    prefect_port: int = typer.Option(
        4200, "--prefect-port", help="Port of the local Prefect server (API and UI)."
    ),
    with_app: bool = typer.Option(True, "--app/--no-app", help="Also serve the Streamlit app."),
    app_port: int | None = typer.Option(
        None, "--app-port", help="Port of the app (default: IOTCARE_APP_PORT, 8501)."
    ),
    with_api: bool = typer.Option(True, "--api/--no-api", help="Also serve the HTTP API."),
    api_port: int | None = typer.Option(
        None, "--api-port", help="Port of the HTTP API (default: IOTCARE_API_PORT, 8600)."
    ),
) -> None:
    """Migrate, seed the demo site, print the logins, then run every part of the system."""
    from core import schema
    from core.db import session_scope
    from core.seed import DEMO_SITE_ID, seed_demo
    from ingest.broker import EmbeddedBroker

    c = ctx()
    t = c.t
    settings = c.settings
    started = utcnow()
    typer.echo(t("cli.demo.database", url=c.engine.url.render_as_string(hide_password=True)))
    outcome = schema.upgrade(c.engine)
    typer.echo(t(f"cli.db.outcome.{outcome}", revision=schema.current_revision(c.engine)))
    with session_scope(c.sessions) as session:
        result = seed_demo(session, timezone=settings.default_timezone)
    print_logins(result)

    broker: EmbeddedBroker | None = None
    mqtt_url = settings.mqtt_url
    if mqtt_url is None:
        port = broker_port if port_free("127.0.0.1", broker_port) else 0
        broker = EmbeddedBroker("127.0.0.1", port).start()
        mqtt_url = broker.url
        typer.echo(t("cli.demo.embedded_broker", url=mqtt_url))
    else:
        typer.echo(t("cli.demo.external_broker", url=mqtt_url))

    env = {"IOTCARE_MQTT_URL": mqtt_url}
    if broker is not None:
        # The embedded broker speaks MQTT 3.1.1 and has no shared subscriptions.
        env.update({"IOTCARE_MQTT_PROTOCOL": "3.1.1", "IOTCARE_MQTT_SHARED_GROUP": ""})
    simulate = ["simulate", "--site", DEMO_SITE_ID, "--speed", str(speed)]
    for spec in [] if no_scenarios else (scenario or DEFAULT_SCENARIOS):
        simulate += ["--scenario", spec]
    log_dir = settings.data_dir / "demo-logs"
    group = ProcessGroup(log_dir)
    feed = AlertFeed(c.sessions, t, c.language, settings.default_timezone, since=started)
    stop = threading.Event()
    died = None

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        group.start("ingest", ["ingest"], {**env, "IOTCARE_MQTT_CLIENT_ID": DEMO_INGEST_CLIENT})
        if with_flows:
            group.start("flows", ["flows", "serve", "--port", str(prefect_port)], env)
            typer.echo(t("cli.demo.prefect", url=f"http://127.0.0.1:{prefect_port}"))
        if settings.metrics_port:
            url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
            typer.echo(t("cli.demo.metrics", url=url))
        if with_app:
            port = app_port or settings.app_port
            group.start("app", ["app", "--port", str(port)], env)
            typer.echo(t("cli.demo.app", url=f"http://localhost:{port}"))
        if with_api:
            port = api_port or settings.api_port
            group.start("api", ["api", "--port", str(port)], env)
            base = f"http://localhost:{port}"
            typer.echo(t("cli.demo.api", url=f"{base}/api/v1", docs=f"{base}{DOCS_URL}"))
        # The first scenario comes a second after the simulator starts, and the broker keeps
        # nothing for a subscriber it has not seen yet: the simulator waits for ingest's replica
        # to say it is connected (and so subscribed), or a while at most.
        died = group.wait(
            lambda: stop.is_set() or ingest_connected(c.sessions, started),
            INGEST_READY_SECONDS,
            every=feed.poll,
        )
        if died is None and not stop.is_set():
            group.start("simulator", simulate, env)
        typer.echo(t("cli.demo.logs", path=str(log_dir)))
        typer.echo(t("cli.demo.running"))
        died = died or group.wait(stop.is_set, run_for, every=feed.poll)
        feed.poll()
        if died is not None:
            typer.secho(
                t(
                    "cli.demo.child_died",
                    name=died.name,
                    code=died.process.returncode,
                    log=str(died.log_path),
                ),
                fg=typer.colors.RED,
                err=True,
            )
    finally:
        typer.echo(t("cli.demo.stopping"))
        group.stop()
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo(t("cli.demo.stopped"))
    if died is not None:
        raise typer.Exit(1)
