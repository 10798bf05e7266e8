"""Windowed alert rules, every minute: thresholds, inactivity, offline devices, night exits,
low batteries and data-quality failures (event rules run instantly in ingest)."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from core.rules.engine import evaluate_rules
from core.timeutil import ensure_utc, utcnow
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime


@task(
    name="Evaluate windowed rules",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def evaluate(now: datetime) -> dict[str, int]:
    """One tick of the rules engine, committed as one transaction."""
    with runtime().session() as session:
        result = evaluate_rules(session, now)
    summary = {
        "rules": result.rules,
        "opened": len(result.opened),
        "repeated": len(result.repeated),
        "resolved": len(result.resolved),
        "invalid": len(result.invalid),
    }
    if result.invalid:
        get_run_logger().warning("rules skipped for invalid parameters: %s", result.invalid)
    return summary


@flow(
    name="alert-rules",
    description="Evaluate the windowed alert rules.",
    flow_run_name=run_name("alert rules", "now"),
    on_failure=[log_flow_failure],
)
def alert_rules_flow(now: datetime | None = None) -> dict[str, int]:
    """Open, repeat and auto-resolve alerts from the last window of data."""
    summary = evaluate(ensure_utc(now or utcnow()))
    get_run_logger().info("alert rules: %s", summary)
    return summary
