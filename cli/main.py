"""The `iotcare` command: database, seeding, users, devices and the demo."""

from __future__ import annotations

import sys

import typer

from cli import (
    api,
    broker,
    context,
    db,
    demo,
    devices,
    flows,
    ingest,
    quality,
    reports,
    residents,
    rollups,
    roster,
    seed,
    silences,
    simulate,
    sites,
    tokens,
    users,
)
from cli import (
    app as app_command,
)
from core.errors import IotCareError

app = typer.Typer(
    name="iotcare",
    help="IoT Care: watch over older people living alone or in care homes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(seed.app, name="seed")
app.add_typer(users.app, name="users")
app.add_typer(sites.app, name="sites")
app.add_typer(residents.app, name="residents")
app.add_typer(roster.app, name="roster")
app.add_typer(devices.app, name="devices")
app.add_typer(flows.app, name="flows")
app.add_typer(rollups.app, name="rollups")
app.add_typer(quality.app, name="quality")
app.add_typer(reports.app, name="reports")
app.add_typer(silences.app, name="silences")
app.add_typer(tokens.app, name="tokens")
app.add_typer(api.app, name="api")
app.command("demo")(demo.demo)
app.command("app")(app_command.app)
app.command("ingest")(ingest.ingest)
app.add_typer(broker.app, name="broker")
app.command("simulate")(simulate.simulate)


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    sys.exit(1)


def run() -> None:
    """Entry point: run a command, turning known failures into one readable line."""
    try:
        app()
    except IotCareError as error:
        # Errors with a catalogue key are said in the operator's language, naming the field.
        message = error.localized(context.ctx().language)
        field = getattr(error, "field", None)
        _fail(f"{field}: {message}" if field else message)
    except Exception as error:
        # sqlalchemy is imported by the commands that use it, not to build the command tree.
        from sqlalchemy.exc import OperationalError

        if not isinstance(error, OperationalError):
            raise
        detail = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        _fail(context.ctx().t("cli.errors.database_unreachable", detail=detail))
    except KeyboardInterrupt:
        _fail(context.ctx().t("cli.errors.interrupted"))
    finally:
        context.reset()


if __name__ == "__main__":
    run()
