"""Data-quality flow: validate the last closed hour, keep the results, alert when a suite fails.

Three steps, each a task with retries: validate (Great Expectations suites of expectations/,
Data Docs built into <data_dir>/data-docs), store (quality_runs and quality_results), alert (a
data-quality alert per failed suite, through the alert lifecycle and its notifications). A
markdown artifact in the Prefect UI summarises the run and links the Data Docs.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from core.logging import log_context
from core.timeutil import ensure_utc, utcnow
from expectations import store
from expectations.runner import QualityParams, SuiteResult, docs_dir, last_window, validate_window
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime
from models import QualityRun


@task(
    name="Validate the window",
    task_run_name="validate {start:%Y-%m-%d %H:%M}..{end:%H:%M} UTC",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def validate(start: datetime, end: datetime, now: datetime) -> list[SuiteResult]:
    """Run every suite over the window and build Data Docs."""
    rt = runtime()
    with log_context(job="data-quality", window_start=start.isoformat()), rt.session() as session:
        return validate_window(
            session,
            rt.database_url,
            start,
            end,
            params=QualityParams.from_settings(rt.settings),
            docs=docs_dir(rt.settings),
            now=now,
            work_mem=rt.settings.rollup_work_mem,
        )


@task(
    name="Store the results",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def store_results(results: list[SuiteResult]) -> list[int]:
    """Write every suite's run and expectation results; returns the run ids."""
    with runtime().session() as session:
        return [store.store_result(session, result).id for result in results]


@task(
    name="Alert on failed suites",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def alert_failures(results: list[SuiteResult], run_ids: list[int]) -> int:
    """Open (or repeat) a data-quality alert per failed suite; returns how many."""
    alerted = 0
    with runtime().session() as session:
        for result, run_id in zip(results, run_ids, strict=True):
            run = session.get(QualityRun, run_id)
            assert run is not None
            alerted += store.alert_if_failed(session, result, run)
    return alerted


def _summary(results: list[SuiteResult]) -> str:
    lines = ["| suite | result | failed checks | Data Docs |", "| --- | --- | --- | --- |"]
    for r in results:
        failed = ", ".join(f"{c.check} ({c.unexpected_count})" for c in r.failed_checks) or "-"
        docs = f"[open]({r.data_docs_url})" if r.data_docs_url else "-"
        lines.append(f"| {r.suite} | {'passed' if r.success else 'FAILED'} | {failed} | {docs} |")
    return "\n".join(lines)


@flow(
    name="data-quality",
    description="Great Expectations suites over the last closed hour; alerts on failure.",
    flow_run_name=run_name("data quality", "window_end"),
    on_failure=[log_flow_failure],
)
def data_quality_flow(window_end: datetime | None = None) -> dict[str, bool]:
    """Validate the hour before `window_end` (default: the last closed hour)."""
    now = utcnow()
    start, end = last_window(ensure_utc(window_end) if window_end else now)
    results = validate(start, end, now)
    run_ids = store_results(results)
    alerted = alert_failures(results, run_ids)
    create_markdown_artifact(
        _summary(results),
        key="data-quality",
        description=f"Data quality {start:%Y-%m-%d %H:%M}..{end:%H:%M} UTC",
    )
    outcome = {r.suite: r.success for r in results}
    get_run_logger().info("data quality %s..%s: %s; %d alert(s)", start, end, outcome, alerted)
    return outcome
