"""`iotcare broker`: the embedded demo broker, and `iotcare broker certs` for Mosquitto's TLS."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import ctx
from cli.ports import require_free_port
from core.errors import IotCareError

app = typer.Typer(
    help="The embedded demo broker (no subcommand), or TLS files for Mosquitto (certs).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def broker(
    context: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(1883, "--port", "-p", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the embedded demo broker until Ctrl+C (MQTT 3.1.1, no shared subscriptions)."""
    if context.invoked_subcommand is not None:
        return
    from ingest.broker import run_broker_forever

    c = ctx()
    c.settings  # noqa: B018  (configures logging, which reports the broker's address)
    require_free_port(host, port, c.t("cli.ports.broker", host=host, port=port))
    run_broker_forever(host, port)


@app.command("certs")
def certs(
    out: Path = typer.Option(
        Path("deploy/mosquitto/certs"),
        "--out",
        file_okay=False,
        help="Directory for ca.crt, server.crt and server.key (MQTT_CERTS_DIR).",
    ),
    hosts: list[str] = typer.Option(
        [],
        "--host",
        help="A name or IP devices use to reach the broker (repeatable); "
        "localhost, mosquitto, 127.0.0.1 and ::1 are always included.",
    ),
    days: int = typer.Option(825, "--days", min=1, max=3650, help="Server certificate validity."),
    force: bool = typer.Option(False, "--force", help="Replace files already there."),
) -> None:
    """Make a development CA and a server certificate for the broker's TLS listener (8883).

    For development and trying IoT Care out; production uses a real certificate
    (deploy/README.md, "Broker TLS"). The CA's key is not kept.
    """
    from core import broker_certs

    c = ctx()
    existing = broker_certs.existing_files(out)
    if existing and not force:
        raise IotCareError(
            "TLS files exist already.",
            key="cli.broker.certs.exists",
            files=", ".join(str(p) for p in existing),
        )
    written = broker_certs.write_dev_certs(out, (*hosts, *broker_certs.DEFAULT_HOSTS))
    typer.echo(
        c.t(
            "cli.broker.certs.written",
            directory=str(written.directory),
            hosts=", ".join(written.hosts),
            until=written.not_after.date().isoformat(),
        )
    )
    if written.key_group is None:
        typer.echo(c.t("cli.broker.certs.key_world_readable", key=str(out / "server.key")))
    typer.echo(c.t("cli.broker.certs.next", ca=str(out / "ca.crt")))
