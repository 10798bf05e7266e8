"""The analyst notebooks run top to bottom against a demo database with a few days of history."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from sqlalchemy.orm import Session

from core import schema
from core.db import make_engine
from core.seed import seed_demo
from simulator.history import seed_history
from tests.conftest import make_test_settings

pytestmark = pytest.mark.system

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120


@pytest.fixture(scope="module")
def history_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite demo database with 3 days of history (wearables every 5 minutes, for speed)."""
    directory = tmp_path_factory.mktemp("notebooks-db")
    url = f"sqlite:///{directory / 'iotcare.db'}"
    engine = make_engine(make_test_settings(directory, database_url=url))
    schema.upgrade(engine)
    with Session(engine) as session, session.begin():
        seed_demo(session, timezone="Asia/Seoul")
    seed_history(engine, site_id="sunrise", days=3, interval=300)
    engine.dispose()
    yield url


def test_the_kernel_is_this_interpreter() -> None:
    """python3 is started with sys.executable (jupyter_client swaps in the running Python)."""
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in {"python", "python3", sys.executable}


def test_there_are_the_three_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_resident_vitals_and_activity.ipynb",
        "02_alert_review.ipynb",
        "03_data_quality_over_time.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(
    path: Path, history_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTCARE_DATABASE_URL", history_database)
    monkeypatch.setenv("IOTCARE_DATA_DIR", str(tmp_path))
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    text = json.dumps([cell.get("outputs", []) for cell in book.cells])
    assert "Traceback" not in text
    assert "application/vnd.plotly.v1+json" in text  # at least one figure was drawn


def test_notebooks_run_on_an_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(make_test_settings(tmp_path, database_url=url))
    schema.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("IOTCARE_DATABASE_URL", url)
    monkeypatch.setenv("IOTCARE_DATA_DIR", str(tmp_path))
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        NotebookClient(
            book,
            kernel_name="python3",
            timeout=CELL_TIMEOUT,
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
