"""Routines flow: learn each resident's usual inactivity gap per local hour (last 14 days).

The inactivity rule uses it instead of its fixed limit when told to (use_routine). Daily; each
resident is a task of its own, so one resident's failure does not hold back the others.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from core import care_report, routines
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime


@task(name="List residents", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, cache_policy=NONE)
def list_residents() -> list[int]:
    """Active residents."""
    with runtime().session() as session:
        return care_report.active_resident_ids(session)


@task(
    name="Learn routine",
    task_run_name="routine of resident {resident_id}",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def learn(resident_id: int, today: date | None) -> int:
    """Learn and store one resident's routine; returns the hours learned."""
    with runtime().session() as session:
        return routines.update_resident(session, resident_id, today)


@flow(
    name="routines",
    description="Learned routine per resident: usual inactivity gap per hour of the day.",
    flow_run_name=run_name("routines", "today"),
    on_failure=[log_flow_failure],
)
def routines_flow(today: date | None = None) -> dict[int, int]:
    """Learn every active resident's routine from the days before `today` (their local today)."""
    learned = {resident_id: learn(resident_id, today) for resident_id in list_residents()}
    get_run_logger().info("routines learned for %d residents", len(learned))
    return learned
