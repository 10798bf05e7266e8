"""Data-quality page: latest suite results, failing checks with samples, trend, Data Docs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core.timeutil import utcnow
from models import QualityResult, QualityRun
from tests.dashboards.conftest import empty_tables, no_exception, texts


def _arrange_runs(app_db, docs_page: Path | None = None) -> int:
    """Three runs: readings passes, freshness passes, then readings fails (with a sample)."""
    empty_tables(app_db, QualityResult, QualityRun)
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    with app_db.session() as session:
        failing_id = 0
        for hours_ago, suite, failed in (
            (3, "readings", 0),
            (2, "device_freshness", 0),
            (1, "readings", 1),
        ):
            start = now - timedelta(hours=hours_ago + 1)
            run = QualityRun(
                suite=suite,
                window_start=start,
                window_end=start + timedelta(hours=1),
                started_at=now - timedelta(hours=hours_ago) + timedelta(minutes=2),
                finished_at=now - timedelta(hours=hours_ago) + timedelta(minutes=3),
                success=failed == 0,
                evaluated=4,
                failed=failed,
                data_docs_url=docs_page.as_uri() if docs_page and failed else None,
            )
            session.add(run)
            session.flush()
            session.add(
                QualityResult(
                    run_id=run.id,
                    expectation="range.heart_rate",
                    column="value",
                    success=failed == 0,
                    element_count=120,
                    unexpected_count=3 if failed else 0,
                    sample=[{"device_id": "wear-zz9", "metric": "heart_rate", "value": 412.0}]
                    if failed
                    else [],
                    details={
                        "description": "Heart rate is within 20-250 bpm.",
                        "expectation_type": "expect_column_values_to_be_between",
                    },
                )
            )
            if failed:
                failing_id = run.id
        session.commit()
    return failing_id


def test_operator_sees_latest_results_failures_with_samples_and_trend(open_app, app_db) -> None:
    _arrange_runs(app_db)
    at = open_app("operator", page="quality")
    no_exception(at)
    shown = texts(at)
    assert "1 of 2 suites failed its latest run: Readings" in shown
    assert "Times are shown in Asia/Seoul time." in shown
    failed = [e for e in at.expander if e.label.startswith("range.heart_rate")]
    assert failed and "3 of 120 values unexpected" in failed[0].label
    sample_tables = [d.value for d in at.dataframe if "device_id" in d.value.columns]
    assert sample_tables and sample_tables[0]["device_id"].tolist() == ["wear-zz9"]
    assert len(at.get("plotly_chart")) == 2
    assert "The Data Docs are not on this server" in shown


def test_data_docs_are_offered_for_download_when_on_this_server(
    open_app, app_db, tmp_path: Path
) -> None:
    docs = tmp_path / "data-docs"
    page = docs / "validations" / "readings" / "run.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>run</html>")
    (docs / "index.html").write_text("<html>index</html>")
    _arrange_runs(app_db, docs_page=page)
    at = open_app("admin", page="quality")
    no_exception(at)
    labels = [b.label for b in at.download_button]
    assert labels == ["Download this run's report", "Download the Data Docs index"]
    assert str(docs.resolve()) in texts(at)


def test_picking_a_passing_run_says_so(open_app, app_db) -> None:
    _arrange_runs(app_db)
    at = open_app("operator", page="quality")
    options = at.selectbox(key="quality.run").options
    passing = [o for o in options if "Device freshness" in o]
    at.selectbox(key="quality.run").select_index(options.index(passing[0])).run()
    no_exception(at)
    assert "Every check of this run passed." in texts(at)


def test_empty_state_says_how_to_run_the_checks(open_app, app_db) -> None:
    empty_tables(app_db, QualityResult, QualityRun)
    at = open_app("operator", page="quality")
    no_exception(at)
    assert "iotcare quality run" in texts(at)


def test_caregivers_cannot_open_the_page(open_app) -> None:
    at = open_app("caregiver1")
    try:
        at.switch_page("app_pages/quality.py").run()
    except ValueError:
        return  # not even registered for this role
    assert "권한이 없습니다" in texts(at) or "do not have access" in texts(at)
    assert not at.dataframe
