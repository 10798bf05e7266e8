"""The dashboard render benchmark still runs: both pages render and their figures are printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import TEST_DATABASE_URL, require

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def test_the_overview_and_resident_pages_render_within_their_targets() -> None:
    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    assert TEST_DATABASE_URL is not None
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.dashboard_render",
            "--quick",
            "--database-url",
            TEST_DATABASE_URL,
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "overview, 20 cards" in result.stdout, output
    assert "(20 drawn on the first page)" in result.stdout, output
    assert "hourly: True" in result.stdout, output
    assert "page (AppTest):        median" in result.stdout, output
    assert "targets (page medians): overview < 1 s, resident < 0.5 s: met" in result.stdout
    assert "reproduce: cd " in result.stdout, output
    assert "-m bench.dashboard_render --residents=20 --sites=2 --days=1" in result.stdout, output
