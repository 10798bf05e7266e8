"""Retention flow: delete raw readings, dead letters, delivered notifications and old
data-quality runs past their configured ages, in batches (core.retention). Rollups stay.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from core import retention
from expectations.runner import docs_dir
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime


def _retry(name: str, run_name_template: str) -> dict[str, object]:
    return {
        "name": name,
        "task_run_name": run_name_template,
        "retries": RETRIES,
        "retry_delay_seconds": RETRY_DELAYS,
        "cache_policy": NONE,
    }


@task(**_retry("Delete old readings", "delete readings before {cutoff:%Y-%m-%d %H:%M}"))
def delete_readings(cutoff: datetime) -> int:
    """Raw readings, device by device, in batches."""
    rt = runtime()
    return retention.purge_readings(rt.sessions, cutoff, rt.settings.retention_batch_size)


@task(**_retry("Delete old dead letters", "delete dead letters before {cutoff:%Y-%m-%d %H:%M}"))
def delete_dead_letters(cutoff: datetime) -> int:
    """Dead letters, in batches."""
    rt = runtime()
    return retention.purge_dead_letters(rt.sessions, cutoff, rt.settings.retention_batch_size)


@task(**_retry("Delete delivered notifications", "delete notifications before {cutoff:%Y-%m-%d}"))
def delete_notifications(cutoff: datetime) -> int:
    """Delivered notifications, in batches."""
    rt = runtime()
    return retention.purge_notifications(rt.sessions, cutoff, rt.settings.retention_batch_size)


@task(**_retry("Delete old quality runs", "delete quality runs before {cutoff:%Y-%m-%d}"))
def delete_quality_runs(cutoff: datetime) -> int:
    """Data-quality runs with their results, and their Data Docs pages."""
    rt = runtime()
    runs = retention.purge_quality_runs(rt.sessions, cutoff, rt.settings.retention_batch_size)
    retention.purge_data_docs(docs_dir(rt.settings), cutoff)
    return runs


@flow(
    name="retention",
    description="Delete raw readings, dead letters and delivered notifications past their age.",
    flow_run_name=run_name("retention", "now"),
    on_failure=[log_flow_failure],
)
def retention_flow(now: datetime | None = None) -> dict[str, int]:
    """Everything older than its configured age goes (counted back from `now`)."""
    cutoffs = retention.Cutoffs.from_settings(runtime().settings, now)
    deleted = {
        "readings": delete_readings(cutoffs.readings),
        "dead_letters": delete_dead_letters(cutoffs.dead_letters),
        "notifications": delete_notifications(cutoffs.notifications),
        "quality_runs": delete_quality_runs(cutoffs.quality_runs),
    }
    get_run_logger().info("retention deleted: %s", deleted)
    return deleted
