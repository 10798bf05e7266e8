"""`iotcare rollups`: recompute hourly and daily rollups over a date range."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from tqdm import tqdm

from cli.context import ctx
from core.i18n import plural

if TYPE_CHECKING:
    from models import RollupPeriod

app = typer.Typer(help="Rollups: hourly and daily aggregates of readings.", no_args_is_help=True)

_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
# Values of models.RollupPeriod (models is imported when a command runs).
_PERIODS = {"hour": ("hour",), "day": ("day",), "both": ("hour", "day")}


def _utc(value: datetime) -> datetime:
    # Dates and times on the command line are UTC, like every bucket.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.command()
def backfill(
    start: datetime = typer.Option(
        ..., "--start", formats=_FORMATS, help="First day or hour, UTC (e.g. 2026-01-01)."
    ),
    end: datetime = typer.Option(
        ..., "--end", formats=_FORMATS, help="End, UTC, exclusive (e.g. 2026-01-08)."
    ),
    period: str = typer.Option("both", "--period", help="hour, day or both."),
) -> None:
    """Recompute rollups of [start, end) from raw readings (idempotent; watermarks untouched)."""
    from core import rollups
    from core.db import session_scope
    from models import RollupPeriod

    c = ctx()
    t = c.t
    begin, finish = _utc(start), _utc(end)
    if period not in _PERIODS:
        raise typer.BadParameter(t("cli.rollups.bad_period", period=period), param_hint="--period")
    if finish <= begin:
        raise typer.BadParameter(t("cli.rollups.empty_range"), param_hint="--end")
    started = time.perf_counter()
    buckets: dict[RollupPeriod, int] = {}
    rows = 0
    with session_scope(c.sessions) as session:
        rollups.summarize_time_index(session)
    for kind in map(RollupPeriod, _PERIODS[period]):
        windows = rollups.backfill_windows(begin, finish, kind)
        with tqdm(
            total=sum(w.buckets for w in windows),
            desc=t(f"cli.rollups.progress.{kind.value}"),
            unit=kind.value,
            leave=False,
        ) as bar:
            for window in windows:
                with session_scope(c.sessions) as session:
                    rows += rollups.rollup_window(
                        session, window, work_mem=c.settings.rollup_work_mem
                    )
                bar.update(window.buckets)
        buckets[kind] = sum(w.buckets for w in windows)
    typer.echo(
        t(
            "cli.rollups.backfilled",
            hours=plural(t, "cli.rollups.hours", buckets.get(RollupPeriod.HOUR, 0)),
            days=plural(t, "cli.rollups.days", buckets.get(RollupPeriod.DAY, 0)),
            start=begin.isoformat(),
            end=finish.isoformat(),
            rows=plural(t, "count.rollup_rows", rows),
            seconds=f"{time.perf_counter() - started:.1f}",
        )
    )
