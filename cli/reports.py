"""`iotcare reports make`: make (and send) residents' daily care reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import typer

from cli.context import ctx
from core.i18n import plural

app = typer.Typer(help="Daily care reports.", no_args_is_help=True)


@app.command()
def make(
    day: datetime | None = typer.Option(
        None,
        "--day",
        formats=["%Y-%m-%d"],
        help="The residents' local day, e.g. 2026-01-05 (default: each resident's yesterday in "
        "their timezone, once IOTCARE_CARE_REPORT_DELAY has passed since their midnight).",
    ),
    resident: list[int] | None = typer.Option(
        None, "--resident", "-r", help="Resident id (repeatable; default: every active one)."
    ),
    send: bool = typer.Option(
        False, "--send/--no-send", help="Also queue it for the caregivers, unless sent before."
    ),
) -> None:
    """Compute and store each resident's report of a day (again, if made before)."""
    from core import care_report
    from core.db import session_scope
    from core.timeutil import utcnow
    from models import Resident

    c = ctx()
    t = c.t
    now = utcnow()
    with session_scope(c.sessions) as session:
        days: dict[int, date] = {}
        for resident_id in resident or care_report.active_resident_ids(session):
            person = session.get(Resident, resident_id)
            if person is None:
                message = t("cli.reports.unknown_resident", resident=resident_id)
                raise typer.BadParameter(message, param_hint="--resident")
            # Without --day: the day the hourly flow makes, the resident's local yesterday.
            timezone = care_report.resident_timezone(session, person)
            delay = c.settings.care_report_delay
            days[resident_id] = day.date() if day else care_report.due_day(now, timezone, delay)
    for resident_id, report_day in days.items():
        with session_scope(c.sessions) as session:
            report = care_report.make_report(session, resident_id, report_day)
            queued = 0
            if send and report.sent_at is None:
                queued = len(care_report.queue_report(session, report))
            typer.echo(summary(t, resident_id, report.data, queued))


def summary(t: Callable[..., str], resident_id: int, data: dict[str, Any], queued: int) -> str:
    """One line per report: its figures, "no data" where the devices sent none."""
    from core import care_report

    common = {
        "resident": resident_id,
        "day": data["day"],
        "alerts": plural(t, "cli.reports.alerts", data["alerts"]["count"]),
        "queued": plural(t, "cli.reports.queued", queued),
    }
    if not care_report.day_has_data(data):
        return t("cli.reports.made_no_data", **common)
    has = care_report.section_has_data
    return t(
        "cli.reports.made",
        sleep=t("cli.reports.in_bed", minutes=f"{data['sleep']['in_bed_minutes']:g}")
        if has(data, "sleep")
        else t("cli.reports.no_sleep"),
        motion=plural(t, "cli.reports.movements", data["activity"]["motion_total"])
        if has(data, "activity")
        else t("cli.reports.no_motion"),
        doors=plural(t, "cli.reports.doors", data["night_doors"]["count"])
        if has(data, "night_doors")
        else t("cli.reports.no_doors"),
        **common,
    )
