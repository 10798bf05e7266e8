"""The benchmarks still run, on small inputs: a few seconds each, the figures printed with the
command that reproduces them, and what each must hold (zero loss, every alert delivered, pages
rendered, suites passed) held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.mosquitto import MOSQUITTO_ENV, find_mosquitto
from tests.support.services import TEST_DATABASE_URL, require

ROOT = Path(__file__).resolve().parents[2]

# Ceilings for a loaded 2-core CI machine (the quick runs take well under a minute when idle).
pytestmark = [pytest.mark.system, pytest.mark.timeout(420)]


def run_bench(module: str, *args: str, postgres: bool = True, broker: bool = False) -> str:
    """`python -m <module> <args>` in the repository without the caller's IOTCARE_* settings
    (with `postgres`, on the test server: skipped without one, as without Mosquitto when it
    needs a `broker`); its output once it exited 0."""
    command = [sys.executable, "-m", module, *args]
    if postgres:
        require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
        assert TEST_DATABASE_URL is not None
        command += ["--database-url", TEST_DATABASE_URL]
    if broker:
        require(find_mosquitto() is not None, "The mosquitto binary", MOSQUITTO_ENV)
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reproduce: cd " in result.stdout, result.stdout
    return result.stdout


@pytest.mark.postgres
def test_throughput_benchmark_runs_without_loss(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    output = run_bench("bench.ingest_throughput", "--quick", "--json", str(runs), broker=True)
    assert "zero loss, no duplicates: yes" in output, output
    assert "ratio ingest/no-op:" in output, output
    assert "-m bench.ingest_throughput --mode=live" in output, output
    assert "--publisher=raw" in output, output
    assert len(runs.read_text().splitlines()) == 2  # the no-op subscriber and ingest


@pytest.mark.postgres
def test_memory_benchmark_survives_an_outage_without_loss() -> None:
    output = run_bench("bench.ingest_memory", "--quick", broker=True)
    assert "database cut" in output, output
    assert "database restored" in output, output
    assert "zero loss, caught up: yes" in output, output


@pytest.mark.postgres
def test_every_critical_event_reaches_an_alert_and_the_webhook(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    output = run_bench("bench.alert_latency", "--quick", "--json", str(runs), broker=True)
    assert "events without an alert or webhook: 0" in output, output
    assert "publish -> webhook received: p50" in output, output
    assert "-m bench.alert_latency --events=10" in output, output
    (line,) = runs.read_text().splitlines()
    record = json.loads(line)
    assert record["events"] == 10
    assert record["alerts"] == 10, output
    assert record["webhooks"] == 10, output
    assert record["missing_alert"] == [] and record["missing_webhook"] == [], output
    assert record["bad_keys"] == [], output
    assert record["commit"]["count"] == 10 and record["webhook"]["count"] == 10
    # Delivered right after the commit, not left for the sweeper.
    for event in record["per_event"]:
        assert event["commit_ms"] is not None and event["webhook_ms"] is not None
        assert event["status"] == "sent", event


@pytest.mark.postgres
def test_the_overview_and_resident_pages_render_within_their_targets() -> None:
    output = run_bench("bench.dashboard_render", "--quick")
    assert "overview, 20 cards" in output, output
    assert "(20 drawn on the first page)" in output, output
    assert "hourly: True" in output, output
    assert "page (AppTest):        median" in output, output
    assert "targets (page medians): overview < 1 s, resident < 0.5 s: met" in output, output
    assert "-m bench.dashboard_render --residents=20 --sites=2 --days=1" in output, output


SMALL_RULES_TICK = ("--residents=20", "--sites=2", "--hours=0.2", "--ticks=2")


def test_rules_tick_runs_on_sqlite() -> None:
    output = run_bench("bench.rules_tick", "--backend=sqlite", *SMALL_RULES_TICK, postgres=False)
    assert "tick 2 at" in output, output
    assert "sqlite: 20 residents, 120 devices, 2 ticks:" in output, output
    assert "(target < 5 s: met)" in output, output
    assert "-m bench.rules_tick --backend=sqlite --residents=20 --sites=2 --hours=0.2" in output


@pytest.mark.postgres
def test_rules_tick_runs_on_postgresql() -> None:
    output = run_bench("bench.rules_tick", "--backend=postgresql", *SMALL_RULES_TICK)
    assert "postgresql: 20 residents, 120 devices, 2 ticks:" in output, output
    assert "(target < 5 s: met)" in output, output
    assert "-m bench.rules_tick --backend=postgresql --residents=20" in output, output
    assert f"--database-url={TEST_DATABASE_URL}" in output, output


SMALL_HOUR = ("--devices=40", "--interval=60", "--repeat=1")


@pytest.mark.postgres
def test_rollup_hour_counts_every_reading() -> None:
    output = run_bench("bench.rollup_hour", *SMALL_HOUR)
    assert "rollup of 2,400 readings into 40 hourly buckets" in output, output
    assert "readings counted in rollups: 2,400 (must equal 2,400)" in output, output
    assert "-m bench.rollup_hour --devices=40 --interval=60 --extra-hours=0" in output, output


@pytest.mark.postgres
def test_quality_hour_passes_every_suite() -> None:
    output = run_bench("bench.quality_hour", *SMALL_HOUR)
    assert "readings passed" in output, output
    assert "device_freshness passed" in output, output
    assert "dead_letter_rate passed" in output, output
    assert "-m bench.quality_hour --devices=40 --interval=60 --extra-hours=0" in output, output


@pytest.mark.postgres
def test_time_index_benchmark_reads_every_bucket() -> None:
    output = run_bench("bench.time_index", "--days=1", "--devices=20", "--hours=2", "--repeat=1")
    assert "summarized:" in output and "(20 buckets)" in output, output
    assert "-m bench.time_index --days=1 --devices=20 --interval=10" in output, output


@pytest.mark.postgres
def test_safety_scenarios_label_every_incident_and_time_the_critical_path(tmp_path: Path) -> None:
    from bench.safety_scenarios import CRITICAL_KINDS, WINDOWED_KINDS

    runs = tmp_path / "runs.jsonl"
    output = run_bench(
        "bench.safety_scenarios",
        "--backend=sqlite",
        "--residents=6",
        "--days=1",
        "--quiet-tick=60",
        "--watch=3",
        "--no-fail",  # today's misses are the benchmark's findings, not the test's
        "--json",
        str(runs),
        broker=True,
    )
    assert "simulated days (simulated clock" in output, output
    assert "live critical path (MQTT -> ingest -> webhook, wall clock)" in output, output
    assert "false alarms:" in output and "per resident-day" in output, output
    assert "-m bench.safety_scenarios --backend=sqlite --residents=6 --days=1" in output, output
    (line,) = runs.read_text().splitlines()
    record = json.loads(line)
    simulated, live = record["simulated"], record["live"]
    # Every kind is labelled, at both sites (two of each; flame and smoke one site each).
    assert set(simulated) == set(CRITICAL_KINDS) | set(WINDOWED_KINDS), output
    assert record["labels"] == sum(row["labels"] for row in simulated.values()) == 26
    # Every critical event opens (or repeats) an alert at once, simulated and live; the live
    # path times each of them, repeats included.
    for kind in CRITICAL_KINDS:
        assert simulated[kind]["detected"] == simulated[kind]["labels"], (kind, output)
        assert live[kind]["detected"] == live[kind]["labels"], (kind, output)
    assert sum(row["labels"] for row in live.values()) == 8, output
    assert live["fall"]["notify_s"]["max"] is not None, output
    # Vital signs held past the default thresholds and a night exit are found in time.
    for kind in ("high_heart_rate", "low_heart_rate", "low_spo2", "night_exit"):
        assert simulated[kind]["detected"] == simulated[kind]["labels"] == 2, (kind, output)
    assert record["resident_days"] > 6, output
    assert set(record["targets"]) == {
        "critical_notified_within_1s",
        "windowed_detected_in_time",
        "false_alarms_below_target",
    }


@pytest.mark.postgres
def test_api_latency_benchmark_serves_the_api_and_reports_percentiles(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    output = run_bench("bench.api_latency", "--quick", "--no-fail", "--json", str(runs))
    assert "HTTP API on uvicorn, one keep-alive connection, 20 residents:" in output, output
    for name in ("alerts, operator:", "alerts, caregiver:", "readings 7 d, first page:"):
        assert name in output, output
    assert "the whole 7 days of resident 1:" in output, output
    assert "-m bench.api_latency --residents=20 --sites=2 --days=1" in output, output
    # The figures of a 2-core shared test machine are not the point here: the run is.
    assert "targets: alert list p99 < 100 ms" in output, output
    (line,) = runs.read_text().splitlines()
    record = json.loads(line)
    timings = record["timings"]
    assert timings["alerts, operator"]["count"] == 20
    # The caregiver sees only their 5 residents' alerts; the operator sees all 20 residents'.
    assert 0 < timings["alerts, caregiver"]["items"] < timings["alerts, operator"]["items"]
    assert timings["readings 7 d, first page"]["items"] == 500
    # One day at the simulator's intervals: every reading of resident 1, once, over the pages.
    assert timings["readings 7 d, every page"]["rows"] == record["counts"]["readings of resident 1"]
