"""`iotcare roster import FILE.csv [--dry-run]`: onboard a care home from one CSV file."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from tqdm import tqdm

from cli.actor import AS_OPTION, viewer_for
from cli.context import ctx
from core.errors import IotCareError

app = typer.Typer(help="Bulk onboarding from a roster CSV (docs/roster.md).", no_args_is_help=True)


@app.command("import")
def import_(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The roster CSV."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row, write nothing."),
    actor: str | None = AS_OPTION,
) -> None:
    """Import sites, residents, devices and caregiver assignments; all or nothing.

    Every row's problem is listed (row, column, message); exits with 1 when there is any.
    """
    from core import roster as roster_import
    from core.db import session_scope

    c = ctx()
    data = path.read_bytes()
    with session_scope(c.sessions) as session:
        viewer = viewer_for(session, actor)
        # disable=None: a bar on a terminal only, not in logs or pipes.
        with tqdm(desc=c.t("roster.progress"), leave=False, file=sys.stderr, disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = roster_import.import_roster(
                session, viewer, data, dry_run=dry_run, progress=progress
            )
    for problem in report.problems:
        typer.echo(problem.line(c.language), err=True)
    if report.problems:
        raise IotCareError(report.summary(c.language))
    typer.echo(report.summary(c.language))
