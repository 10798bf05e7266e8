"""`iotcare ingest`: run an ingest replica."""

from __future__ import annotations

import typer

from cli.context import ctx
from cli.ports import require_free_port


def ingest(
    mqtt_url: str | None = typer.Option(
        None, "--mqtt-url", help="Broker URL (default: IOTCARE_MQTT_URL)."
    ),
) -> None:
    """Subscribe to device topics and write what arrives; stops cleanly on SIGTERM/Ctrl-C."""
    from core.settings import get_settings
    from ingest.__main__ import run_until_signalled

    settings = get_settings()
    if settings.metrics_port:
        # A second replica on this machine would die binding the same metrics port.
        host, port = settings.metrics_host, settings.metrics_port
        require_free_port(host, port, ctx().t("cli.ports.ingest_metrics", host=host, port=port))
    run_until_signalled(mqtt_url)
