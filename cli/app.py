"""`iotcare app`: serve the Streamlit app (caregiver and operator pages)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

import dashboards
from cli.context import ctx
from cli.ports import require_free_port

APP_SCRIPT = Path(dashboards.__file__).resolve().parent / "streamlit_app.py"


def streamlit_command(port: int, address: str) -> list[str]:
    """The command line that serves the app (headless, no usage statistics)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        # Caregivers and operators get no "Deploy" button or developer menu.
        "--client.toolbarMode",
        "viewer",
    ]


def app(
    port: int | None = typer.Option(None, "--port", help="Port (default: IOTCARE_APP_PORT)."),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="Address to listen on (0.0.0.0 in a container)."
    ),
) -> None:
    """Serve the app until stopped; settings are checked before the server starts."""
    c = ctx()  # fails here, naming the setting, if one is wrong
    chosen = port or c.settings.app_port
    # Streamlit would only log "Port ... is not available" after we said it is serving.
    require_free_port(address, chosen, c.t("cli.ports.app", host=address, port=chosen))
    typer.echo(c.t("cli.app.serving", url=f"http://{address}:{chosen}"))
    command = streamlit_command(chosen, address)
    # Replace this process: the supervisor's SIGTERM then reaches Streamlit directly.
    os.execv(command[0], command)  # noqa: S606 - our own interpreter and arguments
