"""`iotcare api`: serve the HTTP API for integrations (uvicorn), or print its OpenAPI document."""

from __future__ import annotations

import typer

from cli.context import ctx
from cli.ports import require_free_port

app = typer.Typer(
    help="The HTTP API for integrations: serve it, or print its OpenAPI document.",
    invoke_without_command=True,
)


@app.callback()
def serve(
    context: typer.Context,
    port: int | None = typer.Option(None, "--port", help="Port (default: IOTCARE_API_PORT)."),
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (default: IOTCARE_API_HOST)."
    ),
) -> None:
    """Serve the API until stopped (docs at /api/docs); settings are checked first."""
    if context.invoked_subcommand is not None:
        return
    import uvicorn

    from api import DOCS_URL
    from api.app import create_app
    from core.logging import configure_logging

    c = ctx()  # fails here, naming the setting, if one is wrong
    # The CLI context quiets INFO; a server logs its requests (with their ids) at INFO.
    configure_logging(c.settings, "api")
    chosen_host = host or c.settings.api_host
    chosen_port = port or c.settings.api_port
    require_free_port(
        chosen_host, chosen_port, c.t("cli.ports.api", host=chosen_host, port=chosen_port)
    )
    base = f"http://{chosen_host}:{chosen_port}"
    typer.echo(c.t("cli.api.serving", url=f"{base}/api/v1", docs=f"{base}{DOCS_URL}"))
    application = create_app(c.settings, c.engine)
    # Our own logging set-up (request ids in every line) stays: uvicorn adds none of its own.
    uvicorn.run(application, host=chosen_host, port=chosen_port, log_config=None, access_log=False)


@app.command("openapi")
def openapi() -> None:
    """Print the OpenAPI document (`iotcare api openapi > docs/openapi.json`)."""
    from api.app import render

    typer.echo(render(ctx().settings), nl=False)
