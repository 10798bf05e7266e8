"""`iotcare quality`: validate a window with the data-quality suites now."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from cli.context import ctx
from core.i18n import plural

app = typer.Typer(help="Data quality (Great Expectations suites).", no_args_is_help=True)


@app.command()
def run(
    window_end: datetime | None = typer.Option(
        None,
        "--window-end",
        formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        help="Validate the hour before this time, UTC (default: the last closed hour).",
    ),
    alert: bool = typer.Option(
        True, "--alert/--no-alert", help="Open a data-quality alert for each failed suite."
    ),
) -> None:
    """Validate one hour, store the results, build Data Docs; exit 1 if a suite failed."""
    from core.db import session_scope
    from expectations import store
    from expectations.runner import QualityParams, docs_dir, last_window, validate_window

    c = ctx()
    t = c.t
    end_at = window_end.replace(tzinfo=UTC) if window_end else None
    start, end = last_window(end_at)
    with session_scope(c.sessions) as session:
        results = validate_window(
            session,
            c.engine.url.render_as_string(hide_password=False),
            start,
            end,
            params=QualityParams.from_settings(c.settings),
            docs=docs_dir(c.settings),
            work_mem=c.settings.rollup_work_mem,
        )
        for result in results:
            run_row = store.store_result(session, result)
            if alert:
                store.alert_if_failed(session, result, run_row)
    typer.echo(t("cli.quality.window", start=start.isoformat(), end=end.isoformat()))
    for result in results:
        key = "cli.quality.passed" if result.success else "cli.quality.failed"
        typer.echo(
            t(
                key,
                suite=result.suite,
                failed=len(result.failed_checks),
                total=plural(t, "cli.quality.checks", len(result.checks)),
            )
        )
        for check in result.failed_checks:
            sample = ", ".join(str(s) for s in check.sample[:3])
            typer.echo(
                t(
                    "cli.quality.check",
                    check=check.check,
                    count=check.unexpected_count,
                    sample=sample,
                )
            )
    if results and results[0].data_docs_url:
        typer.echo(t("cli.quality.docs", url=results[0].data_docs_url))
    if not all(r.success for r in results):
        raise typer.Exit(1)
