"""`iotcare ingest`: run an ingest replica."""

from __future__ import annotations

import typer

from ingest.__main__ import run_until_signalled


def ingest(
    mqtt_url: str | None = typer.Option(
        None, "--mqtt-url", help="Broker URL (default: IOTCARE_MQTT_URL)."
    ),
) -> None:
    """Subscribe to device topics and write what arrives; stops cleanly on SIGTERM/Ctrl-C."""
    run_until_signalled(mqtt_url)
