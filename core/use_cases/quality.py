"""Data quality for operators: the latest result of each suite, what failed, the trend over runs,
and where the Great Expectations Data Docs of a run are.

The quality flow (expectations/) stores one QualityRun per suite and window and one
QualityResult per expectation; this module reads those rows only (core does not import the
flow's code). Data Docs are static HTML the flow builds under <data_dir>/data-docs; the stored
URL is a file:// URL on the machine that ran the flow, which a browser cannot open from the app,
so `data_docs` says where the files are and whether this process can read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.access import Permission, Viewer, require
from core.errors import NotFoundError
from models import QualityResult, QualityRun

DATA_DOCS_DIRNAME = "data-docs"  # expectations.runner.docs_dir builds them here, in data_dir
RUN_COLUMNS = [
    "run_id",
    "suite",
    "window_start",
    "window_end",
    "started_at",
    "finished_at",
    "success",
    "evaluated",
    "failed",
    "pass_rate",
    "data_docs_url",
]
RESULT_COLUMNS = [
    "result_id",
    "check",
    "expectation_type",
    "column",
    "success",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "description",
    "sample",
    "error",
]


def _pass_rate(evaluated: int, failed: int) -> float | None:
    return None if not evaluated else (evaluated - failed) / evaluated


def _run_row(run: QualityRun) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "suite": run.suite,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "success": run.success,
        "evaluated": run.evaluated,
        "failed": run.failed,
        "pass_rate": _pass_rate(run.evaluated, run.failed),
        "data_docs_url": run.data_docs_url,
    }


def latest_runs(session: Session, viewer: Viewer) -> pd.DataFrame:
    """The most recent run of every suite, by suite name."""
    require(viewer, Permission.VIEW_QUALITY)
    newest = (
        select(QualityRun.suite, func.max(QualityRun.id).label("run_id"))
        .group_by(QualityRun.suite)
        .subquery()
    )
    runs = session.scalars(
        select(QualityRun).join(newest, QualityRun.id == newest.c.run_id).order_by(QualityRun.suite)
    ).all()
    return pd.DataFrame([_run_row(r) for r in runs], columns=RUN_COLUMNS)


def run_history(
    session: Session,
    viewer: Viewer,
    *,
    since: datetime | None = None,
    suite: str | None = None,
    limit: int = 2000,
) -> pd.DataFrame:
    """Runs (optionally of one suite, since a time), oldest first: the trend's points."""
    require(viewer, Permission.VIEW_QUALITY)
    query = select(QualityRun)
    if since is not None:
        query = query.where(QualityRun.started_at >= since)
    if suite:
        query = query.where(QualityRun.suite == suite)
    newest_first = session.scalars(
        query.order_by(QualityRun.started_at.desc(), QualityRun.id.desc()).limit(limit)
    ).all()
    return pd.DataFrame([_run_row(r) for r in reversed(newest_first)], columns=RUN_COLUMNS)


def get_run(session: Session, viewer: Viewer, run_id: int) -> QualityRun:
    """One run, or NotFoundError."""
    require(viewer, Permission.VIEW_QUALITY)
    run = session.get(QualityRun, run_id)
    if run is None:
        raise NotFoundError(f"No data-quality run {run_id}.", key="errors.quality.run_missing")
    return run


def run_results(
    session: Session, viewer: Viewer, run_id: int, *, failed_only: bool = False
) -> pd.DataFrame:
    """The expectations of a run, failures first, with the sample of what broke each."""
    get_run(session, viewer, run_id)
    query = select(QualityResult).where(QualityResult.run_id == run_id)
    if failed_only:
        query = query.where(QualityResult.success.is_(False))
    rows = session.scalars(query.order_by(QualityResult.success, QualityResult.id)).all()
    records = []
    for row in rows:
        details = row.details or {}
        records.append(
            {
                "result_id": row.id,
                "check": row.expectation,
                "expectation_type": details.get("expectation_type"),
                "column": row.column,
                "success": row.success,
                "element_count": row.element_count,
                "unexpected_count": row.unexpected_count,
                "unexpected_percent": details.get("unexpected_percent"),
                "description": details.get("description"),
                "sample": list(row.sample or []),
                "error": details.get("error"),
            }
        )
    return pd.DataFrame(records, columns=RESULT_COLUMNS)


@dataclass(frozen=True)
class DataDocs:
    """Where a run's Data Docs page and the Data Docs index are, and whether they can be read."""

    directory: Path
    index: Path
    page: Path | None

    @property
    def index_exists(self) -> bool:
        """Whether the index page is on this machine."""
        return self.index.is_file()

    @property
    def page_exists(self) -> bool:
        """Whether the run's own validation page is on this machine."""
        return self.page is not None and self.page.is_file()


def data_docs(viewer: Viewer, data_dir: Path, url: str | None = None) -> DataDocs:
    """The Data Docs site under data_dir and, for a file:// URL inside it, the run's page."""
    require(viewer, Permission.VIEW_QUALITY)
    directory = (data_dir / DATA_DOCS_DIRNAME).resolve()
    page: Path | None = None
    if url:
        parts = urlsplit(url)
        if parts.scheme == "file":
            candidate = Path(unquote(parts.path)).resolve()
            # Only files inside the docs site: a stored URL never makes the app read elsewhere.
            if candidate.is_relative_to(directory):
                page = candidate
    return DataDocs(directory=directory, index=directory / "index.html", page=page)
