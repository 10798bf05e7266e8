"""`iotcare broker`: run the embedded MQTT broker (amqtt) in the foreground, for the demo."""

from __future__ import annotations

import typer

from cli.context import ctx
from cli.ports import require_free_port
from ingest.broker import run_broker_forever


def broker(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(1883, "--port", "-p", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the embedded demo broker until Ctrl+C (MQTT 3.1.1, no shared subscriptions)."""
    c = ctx()
    c.settings  # noqa: B018  (configures logging, which reports the broker's address)
    require_free_port(host, port, c.t("cli.ports.broker", host=host, port=port))
    run_broker_forever(host, port)
