"""The ingest benchmarks still run: a few seconds each, zero loss, a command to reproduce them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mosquitto import MOSQUITTO_ENV, find_mosquitto
from tests.support.services import TEST_DATABASE_URL, require

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def run_bench(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    require(find_mosquitto() is not None, "The mosquitto binary", MOSQUITTO_ENV)
    assert TEST_DATABASE_URL is not None
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    return subprocess.run(
        [sys.executable, "-m", module, "--quick", "--database-url", TEST_DATABASE_URL, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )


def test_throughput_benchmark_runs_without_loss(tmp_path: Path) -> None:
    result = run_bench("bench.ingest_throughput", "--json", str(tmp_path / "runs.jsonl"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "zero loss, no duplicates: yes" in result.stdout, output
    assert "ratio ingest/no-op:" in result.stdout, output
    assert "reproduce: cd " in result.stdout, output
    assert "-m bench.ingest_throughput --mode=live" in result.stdout, output
    assert "--publisher=raw" in result.stdout, output
    runs = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 2  # the no-op subscriber and ingest


def test_memory_benchmark_survives_an_outage_without_loss() -> None:
    result = run_bench("bench.ingest_memory")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "database cut" in result.stdout, output
    assert "database restored" in result.stdout, output
    assert "zero loss, caught up: yes" in result.stdout, output
    assert "reproduce: cd " in result.stdout, output
