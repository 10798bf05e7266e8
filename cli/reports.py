"""`iotcare reports`: make (and send) residents' daily care reports for a given day."""

from __future__ import annotations

from datetime import datetime

import typer

from cli.context import ctx
from core import care_report
from core.db import session_scope

app = typer.Typer(help="Daily care reports.", no_args_is_help=True)


@app.command()
def make(
    day: datetime = typer.Option(
        ..., "--day", formats=["%Y-%m-%d"], help="The residents' local day, e.g. 2026-01-05."
    ),
    resident: list[int] | None = typer.Option(
        None, "--resident", "-r", help="Resident id (repeatable; default: every active one)."
    ),
    send: bool = typer.Option(
        False, "--send/--no-send", help="Also queue it for the caregivers, unless sent before."
    ),
) -> None:
    """Compute and store the reports of one day (again, if made before)."""
    from core.notify.outbox import install

    c = ctx()
    t = c.t
    install(c.settings)
    with session_scope(c.sessions) as session:
        ids = resident or care_report.active_resident_ids(session)
    for resident_id in ids:
        with session_scope(c.sessions) as session:
            report = care_report.make_report(session, resident_id, day.date())
            queued = 0
            if send and report.sent_at is None:
                queued = len(care_report.queue_report(session, report))
            data = report.data
            typer.echo(
                t(
                    "cli.reports.made",
                    resident=resident_id,
                    day=data["day"],
                    in_bed=data["sleep"]["in_bed_minutes"],
                    motion=data["activity"]["motion_total"],
                    doors=data["night_doors"]["count"],
                    alerts=data["alerts"]["count"],
                    queued=queued,
                )
            )
