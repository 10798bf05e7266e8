"""The operator commands of the scheduled jobs: backfill, quality run, reports make, flows list."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import context
from cli import flows as flows_cli
from cli import quality as quality_cli
from cli import reports as reports_cli
from cli import rollups as rollups_cli
from core import care_report, registry, schema
from core.contract.catalogue import DeviceType
from core.timeutil import utcnow
from flows.deployments import DEPLOYMENTS
from models import CareReport, QualityRun, Reading, Resident, Rollup

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


@pytest.fixture
def database(
    migrated_database_url: str, override_settings: Callable[..., Any]
) -> Iterator[Session]:
    """A migrated database the CLI's settings point at, with one registered wearable."""
    override_settings(database_url=migrated_database_url, log_level="WARNING")
    engine = create_engine(migrated_database_url)
    schema.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        site = registry.create_site(session, "clisite", "CLI site", "UTC")
        resident = registry.create_resident(session, site, "Park")
        registry.add_device(
            session,
            device_id="cli-wear",
            site_id=site.id,
            device_type=DeviceType.WEARABLE.value,
            resident_id=resident.id,
        )
        session.execute(
            insert(Reading),
            [
                {
                    "device_id": "cli-wear",
                    "metric": "heart_rate",
                    "ts": T0 + timedelta(minutes=10 * i),
                    "value": 60.0 + i,
                }
                for i in range(30)
            ],
        )
        session.commit()
        yield session
    context.reset()
    engine.dispose()


def cli() -> typer.Typer:
    """The commands mounted as cli/main.py mounts them (iotcare rollups/quality/reports/flows)."""
    root = typer.Typer()
    root.add_typer(rollups_cli.app, name="rollups")
    root.add_typer(quality_cli.app, name="quality")
    root.add_typer(reports_cli.app, name="reports")
    root.add_typer(flows_cli.app, name="flows")
    return root


def invoke(*args: str, check: bool = True) -> Any:
    result = CliRunner().invoke(cli(), list(args), catch_exceptions=False)
    context.reset()
    # The command logged to the runner's captured stderr, closed now: drop that handler.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_iotcare", False)]:
        root.removeHandler(handler)
    if check:
        assert result.exit_code == 0, result.output
    return result


def test_backfill_prints_one_summary_line(database: Session) -> None:
    result = invoke("rollups", "backfill", "--start", "2026-01-05", "--end", "2026-01-06")
    summary = result.output.strip().splitlines()[-1].strip()  # after the cleared bar
    assert summary.startswith("Rolled up 24 hours and 1 day from 2026-01-05T00:00:00+00:00 to ")
    hourly = select(func.sum(Rollup.count)).where(Rollup.period == "hour")
    assert database.scalar(hourly) == 30
    daily = select(func.count()).select_from(Rollup).where(Rollup.period == "day")
    assert database.scalar(daily) == 1


def test_backfill_refuses_an_empty_range(database: Session) -> None:
    result = invoke(
        "rollups", "backfill", "--start", "2026-01-06", "--end", "2026-01-05", check=False
    )
    assert result.exit_code == 2
    assert "--end must be later than --start" in result.output


def test_quality_run_reports_each_suite(database: Session) -> None:
    result = invoke("quality", "run", "--window-end", "2026-01-05T11:00", "--no-alert")
    lines = result.output.splitlines()
    assert lines[0].startswith("Data quality of 2026-01-05T10:00:00+00:00")
    assert "  readings: passed (17 checks)" in lines
    assert "  device_freshness: passed (1 check)" in lines
    assert database.scalar(select(func.count()).select_from(QualityRun)) == 3


def test_reports_make_stores_a_report(database: Session) -> None:
    result = invoke("reports", "make", "--day", "2026-01-05")
    # Only a wearable's heart rate: the sections of the other sensors have no data, not zeros.
    assert result.output.strip().endswith(
        ": no sleep data, no motion data, no door data, 0 alerts; 0 notifications queued."
    )
    report = database.scalar(select(CareReport))
    assert report is not None and report.data["vitals"]["heart_rate"]["count"] == 30


def test_reports_make_without_a_day_makes_each_residents_yesterday(database: Session) -> None:
    """As the README writes it: no --day makes the day the hourly flow makes, in local time."""
    resident = database.scalar(select(Resident))
    assert resident is not None
    resident.timezone = "Pacific/Kiritimati"  # UTC+14: its yesterday is often UTC's today
    database.commit()
    before = utcnow()
    result = invoke("reports", "make")
    days = {
        care_report.due_day(at, "Pacific/Kiritimati", timedelta(hours=1))
        for at in (before, utcnow())
    }
    report = database.scalar(select(CareReport))
    assert report is not None and report.day in days
    assert f"Resident {resident.id}, {report.day.isoformat()}: no data from the resident's" in (
        result.output
    )


def test_flows_list_names_every_deployment(override_settings: Callable[..., Any]) -> None:
    override_settings(log_level="WARNING")
    result = invoke("flows", "list")
    assert [line.split()[0] for line in result.output.splitlines()] == [s.name for s in DEPLOYMENTS]
