"""Care-report flow: each resident's report of their last local day, stored and sent.

Runs hourly, so every resident's report is made soon after their own local midnight (plus
IOTCARE_CARE_REPORT_DELAY for late readings), whatever their timezone; a report that exists is
not made again. With `day` given, the reports of that day are made (again) for the residents
given, or all active ones. A report is queued for its caregivers once (sent_at).
"""

from __future__ import annotations

from datetime import date, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from core import care_report
from core.timeutil import ensure_utc, utcnow
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime
from models import CareReport


@task(
    name="Find due care reports",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def find_due(
    now: datetime, day: date | None, resident_ids: list[int] | None
) -> list[tuple[int, date]]:
    """(resident, day) pairs to report on."""
    rt = runtime()
    with rt.session() as session:
        if day is None:
            due = care_report.due_reports(session, now, rt.settings.care_report_delay)
            return [(r, d) for r, d in due if resident_ids is None or r in resident_ids]
        ids = resident_ids or care_report.active_resident_ids(session)
        return [(resident_id, day) for resident_id in ids]


@task(
    name="Make care report",
    task_run_name="care report of resident {resident_id} for {day}",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def make(resident_id: int, day: date) -> int:
    """Compute and store one report; returns its id."""
    with runtime().session() as session:
        return care_report.make_report(session, resident_id, day).id


@task(
    name="Send care report",
    task_run_name="send care report {report_id}",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def send(report_id: int) -> int:
    """Queue the report for its caregivers unless done before; returns notifications queued."""
    with runtime().session() as session:
        report = session.get(CareReport, report_id, with_for_update=True)
        if report is None or report.sent_at is not None:
            return 0
        return len(care_report.queue_report(session, report))


@flow(
    name="care-reports",
    description="Daily care report per resident (their local day): stored, sent to caregivers.",
    flow_run_name=run_name("care reports", "now"),
    on_failure=[log_flow_failure],
)
def care_reports_flow(
    now: datetime | None = None, day: date | None = None, resident_ids: list[int] | None = None
) -> dict[str, int]:
    """Make and send the due reports (or those of `day`)."""
    now = ensure_utc(now or utcnow())
    made = queued = 0
    for resident_id, report_day in find_due(now, day, resident_ids):
        report_id = make(resident_id, report_day)
        queued += send(report_id)
        made += 1
    get_run_logger().info("care reports made: %d, notifications queued: %d", made, queued)
    return {"reports": made, "notifications": queued}
