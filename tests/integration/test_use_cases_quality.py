"""Data-quality queries: access, latest run per suite, results with samples, trend, Data Docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.access import AccessDenied, Viewer
from core.errors import NotFoundError
from core.use_cases.quality import data_docs, get_run, latest_runs, run_history, run_results
from models import QualityResult, QualityRun, Role

T0 = datetime(2031, 5, 1, 0, 0, tzinfo=UTC)


def _run(session, suite: str, hour: int, failed: int, evaluated: int = 4) -> QualityRun:
    start = T0 + timedelta(hours=hour)
    run = QualityRun(
        suite=suite,
        window_start=start,
        window_end=start + timedelta(hours=1),
        started_at=start + timedelta(hours=1, minutes=1),
        finished_at=start + timedelta(hours=1, minutes=2),
        success=failed == 0,
        evaluated=evaluated,
        failed=failed,
    )
    session.add(run)
    session.flush()
    session.add_all(
        [
            QualityResult(
                run_id=run.id,
                expectation="freshness",
                column="silent_minutes",
                success=failed == 0,
                element_count=10,
                unexpected_count=failed,
                sample=[{"device_id": "d1"}] if failed else [],
                details={"description": "Devices report.", "expectation_type": "expect_between"},
            ),
            QualityResult(
                run_id=run.id, expectation="not_null.ts", success=True, sample=[], details={}
            ),
        ]
    )
    session.flush()
    return run


@pytest.fixture
def runs(db_session, factory):
    db_session.query(QualityRun).delete()
    made = [
        _run(db_session, "readings", 0, 0),
        _run(db_session, "device_freshness", 0, 1),
        _run(db_session, "readings", 1, 2),
        _run(db_session, "device_freshness", 1, 0),
    ]
    return made, Viewer.of(factory.user(Role.OPERATOR)), Viewer.of(factory.user(Role.CAREGIVER))


def test_caregivers_may_not_see_data_quality(db_session, runs, tmp_path: Path) -> None:
    made, _, caregiver = runs
    for call in (
        lambda: latest_runs(db_session, caregiver),
        lambda: run_history(db_session, caregiver),
        lambda: run_results(db_session, caregiver, made[0].id),
        lambda: data_docs(caregiver, tmp_path),
    ):
        with pytest.raises(AccessDenied):
            call()


def test_latest_run_of_each_suite(db_session, runs) -> None:
    made, operator, _ = runs
    latest = latest_runs(db_session, operator)
    assert latest["suite"].tolist() == ["device_freshness", "readings"]
    assert latest["run_id"].tolist() == [made[3].id, made[2].id]
    assert latest["success"].tolist() == [True, False]
    assert latest["pass_rate"].tolist() == [1.0, 0.5]


def test_results_put_failures_first_with_samples(db_session, runs) -> None:
    made, operator, _ = runs
    results = run_results(db_session, operator, made[2].id)
    assert results["check"].tolist() == ["freshness", "not_null.ts"]
    first = results.iloc[0]
    assert not first["success"] and first["unexpected_count"] == 2
    assert first["sample"] == [{"device_id": "d1"}]
    assert first["description"] == "Devices report."
    failed = run_results(db_session, operator, made[2].id, failed_only=True)
    assert len(failed) == 1
    with pytest.raises(NotFoundError) as error:
        get_run(db_session, operator, 10**9)
    assert error.value.key == "errors.quality.run_missing"


def test_history_is_the_trend_oldest_first(db_session, runs) -> None:
    made, operator, _ = runs
    history = run_history(db_session, operator)
    assert history["run_id"].tolist() == [r.id for r in made]
    since = run_history(db_session, operator, since=T0 + timedelta(hours=2), suite="readings")
    assert since["run_id"].tolist() == [made[2].id]
    assert since["failed"].tolist() == [2]


def test_data_docs_only_inside_the_docs_directory(runs, tmp_path: Path) -> None:
    _, operator, _ = runs
    docs = tmp_path / "data-docs"
    page = docs / "validations" / "r.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html/>")
    found = data_docs(operator, tmp_path, page.as_uri())
    assert found.page == page.resolve() and found.page_exists and not found.index_exists
    outside = tmp_path / "secret.html"
    outside.write_text("no")
    assert data_docs(operator, tmp_path, outside.as_uri()).page is None
    assert data_docs(operator, tmp_path, "https://example.com/x.html").page is None
    assert data_docs(operator, tmp_path, None).index == docs.resolve() / "index.html"
