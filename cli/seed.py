"""`iotcare seed`: demo data."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import typer
from tqdm import tqdm

from cli.context import ctx
from core.errors import IotCareError
from core.i18n import plural

if TYPE_CHECKING:
    from core.seed import SeedResult

# simulator.history.DEFAULT_INTERVAL (a test keeps them equal): the simulator, pandas with it,
# is imported when the command runs, not to build the command tree.
DEFAULT_INTERVAL = 120.0

app = typer.Typer(help="Create demo data.", no_args_is_help=True)


def print_logins(result: SeedResult) -> None:
    """Show what seeding did and the generated logins (shown only now, stored only hashed)."""
    t = ctx().t
    key = "cli.seed.created" if result.created else "cli.seed.exists"
    typer.echo(
        t(
            key,
            site=result.site_id,
            residents=plural(t, "count.residents", result.residents),
            devices=plural(t, "count.devices", result.devices),
            rules=plural(t, "count.rules", result.rules),
        )
    )
    if result.rules_updated:
        typer.echo(t("cli.seed.rules_updated", rules=", ".join(result.rules_updated)))
    typer.echo(t("cli.seed.logins_header"))
    for login in result.logins:
        typer.echo(f"  {login.role.value:<10} {login.username:<12} {login.password}")
    typer.echo(t("cli.seed.logins_note"))


@app.command()
def demo() -> None:
    """Create the demo site (20 residents, their devices, staff, default rules)."""
    from core import schema
    from core.db import session_scope
    from core.seed import seed_demo

    c = ctx()
    schema.upgrade(c.engine)
    with session_scope(c.sessions) as session:
        result = seed_demo(session, timezone=c.settings.default_timezone)
    print_logins(result)


@app.command()
def history(
    site: str = typer.Option("sunrise", "--site", "-s", help="Site to give a history."),
    days: int = typer.Option(14, "--days", help="Days before now to fill (1-30)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulation (same seed, same data)."),
    interval: float = typer.Option(
        DEFAULT_INTERVAL, "--interval", help="Seconds between wearable readings in the history."
    ),
    quality_runs: int = typer.Option(
        4, "--quality-runs", help="Hourly data-quality runs spread over the period (0: none)."
    ),
) -> None:
    """Fill the past days with simulated readings, events, handled alerts, rollups and reports.

    Offline (no broker), through ingest's own parsing and writing; running it again adds nothing.
    """
    from core import schema
    from core.db import session_scope
    from core.rules.backtest import MAX_DAYS
    from simulator.errors import SimulatorError
    from simulator.history import quality_windows, seed_history
    from simulator.site_registry import load_site

    c = ctx()
    t = c.t
    if not 1 <= days <= MAX_DAYS:
        raise IotCareError(t("cli.seed.history.bad_days", value=days))
    if not interval > 0:
        raise IotCareError(t("cli.seed.history.bad_interval", value=interval))
    schema.upgrade(c.engine)
    started = time.perf_counter()
    bars: dict[str, tqdm] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[phase] = tqdm(
                total=total, desc=t(f"cli.seed.history.progress.{phase}"), leave=False
            )
        bar.total = total
        bar.update(done - bar.n)

    settings = c.settings
    try:
        with session_scope(c.sessions) as session:
            load_site(session, site)  # a missing site is said before anything starts
        result = seed_history(
            c.engine,
            site_id=site,
            days=days,
            seed=seed,
            interval=interval,
            root=settings.mqtt_topic_root,
            default_timezone=settings.default_timezone,
            progress=progress,
        )
    except SimulatorError as error:
        raise IotCareError(t(f"cli.seed.history.{error.key}", **error.params)) from None
    finally:
        for bar in bars.values():
            bar.close()
    span = {"site": site, "start": result.start.isoformat(), "end": result.end.isoformat()}
    if result.skipped:
        typer.echo(t("cli.seed.history.skipped", **span))
        return
    quality = 0
    began = time.perf_counter()
    windows = quality_windows(result.start, result.end, quality_runs)
    if windows:
        quality = _quality_runs(windows, progress)
        bars.pop("quality").close()
    result.seconds["quality"] = time.perf_counter() - began
    if result.scenarios:
        typer.echo(t("cli.seed.history.scenarios", scenarios=", ".join(result.scenarios)))
    typer.echo(
        t(
            "cli.seed.history.done",
            start=span["start"],
            end=span["end"],
            acknowledged=result.acknowledged,
            resolved=result.resolved,
            false_alarms=result.false_alarms,
            **{
                name: plural(t, f"cli.seed.history.count.{name}", n)
                for name, n in (
                    ("messages", result.messages),
                    ("readings", result.readings),
                    ("events", result.events),
                    ("alerts", result.alerts_opened),
                    ("repeats", result.repeats),
                    ("rollups", result.rollup_rows),
                    ("reports", result.reports),
                    ("quality", quality),
                )
            },
        )
    )
    seconds = {k: f"{result.seconds.get(k, 0.0):.1f}" for k in PHASES}
    typer.echo(
        t("cli.seed.history.timing", seconds=f"{time.perf_counter() - started:.1f}", **seconds)
    )


PHASES = ("simulate", "alerts", "rollups", "reports", "quality")


def _quality_runs(
    windows: list[tuple[datetime, datetime]], progress: Callable[[str, int, int], None]
) -> int:
    """Validate a few past hours with the data-quality suites, stored as run just after each."""
    from sqlalchemy import func, select

    from core.db import session_scope
    from expectations import store
    from expectations.runner import QualityParams, docs_dir, validate_window
    from models import QualityRun

    c = ctx()
    made = 0
    for index, (start, end) in enumerate(windows, start=1):
        with session_scope(c.sessions) as session:
            done = session.scalar(
                select(func.count())
                .select_from(QualityRun)
                .where(QualityRun.window_start == start, QualityRun.window_end == end)
            )
            if not done:
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
                    # As the hourly flow would have run it, a minute after the hour closed.
                    ran = end + timedelta(minutes=1)
                    store.store_result(
                        session,
                        replace(result, started_at=ran, finished_at=ran + timedelta(seconds=5)),
                    )
                made += 1
        progress("quality", index, len(windows))
    return made
