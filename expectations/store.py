"""Keep data-quality results in the database and tell operators when a suite fails.

A failed suite opens (or counts a repeat of) one data-quality alert per suite, through the
alert lifecycle, so it is routed and escalated like any other alert. The enabled data-quality
rules decide severity and route: a rule whose params list suites applies to those, an empty
list to every suite; without any rule the alert is a rule-less warning. A suite that passes
again resolves its alert when the rule says auto_resolve.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.alerts.lifecycle import Subject, dedupe_key, find_unresolved, raise_alert, resolve
from expectations.runner import SuiteResult
from models import AlertRule, QualityResult, QualityRun, RuleKind, Severity

log = logging.getLogger(__name__)


def store_result(session: Session, result: SuiteResult) -> QualityRun:
    """Write one suite's run and its per-expectation results; returns the run (flushed)."""
    run = QualityRun(
        suite=result.suite,
        window_start=result.window_start,
        window_end=result.window_end,
        started_at=result.started_at,
        finished_at=result.finished_at,
        success=result.success,
        evaluated=len(result.checks),
        failed=len(result.failed_checks),
        data_docs_url=result.data_docs_url,
    )
    session.add(run)
    session.flush()
    session.add_all(
        QualityResult(
            run_id=run.id,
            expectation=check.check,
            column=check.column,
            success=check.success,
            element_count=check.element_count,
            unexpected_count=check.unexpected_count,
            sample=check.sample,
            details={**check.details, "expectation_type": check.expectation},
        )
        for check in result.checks
    )
    session.flush()
    return run


def rule_for(session: Session, suite: str) -> AlertRule | None:
    """The enabled data-quality rule that covers this suite, if any (named suites first)."""
    rules = session.scalars(
        select(AlertRule)
        .where(AlertRule.kind == RuleKind.DATA_QUALITY, AlertRule.enabled.is_(True))
        .order_by(AlertRule.id)
    ).all()
    named = [r for r in rules if suite in (r.params or {}).get("suites", [])]
    general = [r for r in rules if not (r.params or {}).get("suites")]
    return (named or general or [None])[0]


def _subject(suite: str) -> Subject:
    return Subject("suite", suite)


def alert_if_failed(session: Session, result: SuiteResult, run: QualityRun) -> bool:
    """Open or repeat the suite's alert when it failed; resolve it when it passed (auto_resolve).

    Returns whether an alert was opened or repeated.
    """
    rule = rule_for(session, result.suite)
    if result.success:
        if rule is not None and rule.auto_resolve:
            key = dedupe_key(rule.id, RuleKind.DATA_QUALITY, _subject(result.suite))
            existing = find_unresolved(session, key)
            if existing is not None:
                resolve(session, existing.id, None, note=f"suite passed (run {run.id})")
        return False
    failed = result.failed_checks
    raised = raise_alert(
        session,
        kind=RuleKind.DATA_QUALITY,
        severity=rule.severity if rule else Severity.WARNING,
        subject=_subject(result.suite),
        title=f"Data quality: suite '{result.suite}' failed {len(failed)} of "
        f"{len(result.checks)} checks",
        details={
            "run_id": run.id,
            "window_start": result.window_start.isoformat(),
            "window_end": result.window_end.isoformat(),
            "failed_checks": [
                {"check": c.check, "unexpected_count": c.unexpected_count, "sample": c.sample[:5]}
                for c in failed
            ],
            "data_docs_url": result.data_docs_url,
        },
        rule=rule,
        at=result.finished_at,
    )
    log.warning(
        "data-quality suite %s failed: %s; alert %s (%s)",
        result.suite,
        ", ".join(c.check for c in failed),
        raised.alert.id,
        "new" if raised.created else f"repeat {raised.alert.occurrences}",
        extra={"suite": result.suite, "quality_run": run.id},
    )
    return True


def latest_runs(session: Session, limit: int = 50) -> Sequence[QualityRun]:
    """The most recent runs of every suite, newest first (for the operator pages)."""
    return session.scalars(
        select(QualityRun).order_by(QualityRun.started_at.desc(), QualityRun.id.desc()).limit(limit)
    ).all()
